/* What a run writes and prints besides the model: log.csv (a row per step and per evaluation)
 * and the evaluation reports on stdout. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <math.h>
#include <stdio.h>

const char train_csv_header[] =
    "kind,epoch,step,loss,lr,grad_norm,images_per_s,elapsed_s,val_loss,top1,top5,"
    "mean_class_acc,map,f1_micro,f1_macro,kappa\n";

/* Keep the rows up to a resumed checkpoint: a run killed after its last checkpoint has logged
 * steps the resumed run will do again. */
void trim_log(const char *path, int64_t step)
{
    FILE *f = fopen(path, "r");
    if (!f) return;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *g = fopen(tmp, "w");
    if (!g) {
        fclose(f);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        char kind[16];
        int epoch;
        long long s;
        if (sscanf(line, "%15[^,],%d,%lld", kind, &epoch, &s) == 3 && s > step) continue;
        fputs(line, g);
    }
    free(line);
    fclose(f);
    if (fclose(g) == 0) rename(tmp, path);
}

static void csv_num(FILE *f, double v)
{
    if (isnan(v)) fputs(",", f);
    else fprintf(f, ",%.6g", v);
}

int write_csv_eval(FILE *log, int epoch, int64_t step, const mcnn_eval_result *e,
                          double elapsed)
{
    if (!log) return 0;
    fprintf(log, "epoch,%d,%lld,,,,,%.1f", epoch, (long long)step, elapsed);
    csv_num(log, e->loss);
    csv_num(log, e->top1);
    csv_num(log, e->top5);
    csv_num(log, e->mean_class_acc);
    csv_num(log, e->map);
    csv_num(log, e->f1_micro);
    csv_num(log, e->f1_macro);
    csv_num(log, e->kappa);
    fputc('\n', log);
    return fflush(log);
}

void print_eval(const char *what, const mcnn_eval_result *e, double seconds)
{
    if (e->multi_label)
        printf("%s: loss %.4f  mAP %.2f%%  F1 micro %.2f%% macro %.2f%%  kappa %.4f  (%d images, "
               "%.1f s)\n", what, e->loss, 100 * e->map, 100 * e->f1_micro, 100 * e->f1_macro,
               e->kappa, e->count, seconds);
    else {
        /* top-5 says something only with more than 5 classes (with 5 or fewer it is 100%) */
        char top5[32] = "";
        if (e->num_classes > 5) snprintf(top5, sizeof top5, "  top-5 %.2f%%", 100 * e->top5);
        printf("%s: loss %.4f  top-1 %.2f%%%s  mean per-class %.2f%%  kappa %.4f  (%d images, "
               "%.1f s)\n", what, e->loss, 100 * e->top1, top5, 100 * e->mean_class_acc,
               e->kappa, e->count, seconds);
    }
    fflush(stdout);
}

void print_confusion(const mcnn_eval_result *e, char *const *names)
{
    const int K = e->num_classes;
    if (!e->confusion || K > 50) return;
    printf("confusion matrix (rows: truth, columns: prediction)\n%14s", "");
    for (int p = 0; p < K; p++) printf(" %6d", p);
    printf("\n");
    for (int t = 0; t < K; t++) {
        printf("%2d %-11.11s", t, names[t]);
        for (int p = 0; p < K; p++) printf(" %6lld", (long long)e->confusion[(size_t)t * K + p]);
        printf("\n");
    }
}
