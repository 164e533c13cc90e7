/* mcnn-train eval: the metrics of a trained model on a data set, and optionally Cohen's kappa
 * against a second labelling of the same images. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_path(const void *a, const void *b)
{
    return strcmp(**(char **const *)a, **(char **const *)b);
}


/* Kappa of the predictions against a second labelling (a split file), matched by path. */
static void reference_kappa(const mcnn_eval_result *e, const mcnn_dataset *data, const options *o)
{
    mcnn_dataset ref;
    load_source(&ref, o->reference, o, "--reference", 0);
    check_same_classes(data, &ref);
    const int K = data->num_classes;
    if (!data->paths) {
        app_error("--reference: %s has no file paths to match", data->source);
        exit(2);
    }
    char ***sorted = malloc((size_t)ref.count * sizeof *sorted);
    int64_t *cm = calloc((size_t)K * K, sizeof *cm), bin[4] = {0};
    if (!sorted || !cm) {
        app_error("out of memory");
        exit(1);
    }
    for (int i = 0; i < ref.count; i++) sorted[i] = &ref.paths[i];
    qsort(sorted, (size_t)ref.count, sizeof *sorted, by_path);
    int matched = 0;
    for (int n = 0; n < data->count; n++) {
        char **key = &data->paths[n];
        char ***hit = bsearch(&key, sorted, (size_t)ref.count, sizeof *sorted, by_path);
        if (!hit) continue;
        const int j = (int)(*hit - ref.paths);
        const float *s = e->scores + (size_t)n * K;
        matched++;
        if (!e->multi_label) {
            int best = 0;
            for (int k = 1; k < K; k++) best = s[k] > s[best] ? k : best;
            cm[(size_t)ref.labels[j] * K + best]++;
        } else {
            const float logit_t = logf((float)o->threshold / (1 - (float)o->threshold));
            for (int k = 0; k < K; k++) {
                const int truth = ref.targets ? ref.targets[(size_t)j * K + k] : ref.labels[j] == k;
                bin[truth * 2 + (s[k] > logit_t)]++;
            }
        }
    }
    if (!matched) app_error("--reference: no image of %s is in %s", data->source, ref.source);
    else
        printf("kappa against %s: %.4f (%d images matched)\n", ref.source,
               e->multi_label ? mcnn_cohen_kappa(bin, 2) : mcnn_cohen_kappa(cm, K), matched);
    free(sorted);
    free(cm);
    mcnn_dataset_free(&ref);
}

int cmd_eval(options *o)
{
    if (!o->model || !o->data) {
        app_error("eval needs --model FILE and --data SOURCE");
        return 2;
    }
    if (o->threads) mcnn_set_threads(o->threads);
    /* --precision: inference only, the block weights packed as they are read and their fp32
     * copies never kept (docs/precision.md "Memory"); none: fp32 as trained */
    mcnn_classifier_load_options lo = {.inference_only = o->precision != NULL};
    if (o->precision) CHECK(mcnn_precision_parse(o->precision, &lo.precision));
    mcnn_classifier *model;
    CHECK(mcnn_classifier_load(&model, o->model, &lo));
    mcnn_dataset data;
    load_source(&data, o->data, o, "--data", o->val_limit ? o->val_limit : o->limit);
    const int K = mcnn_classifier_num_classes(model);
    if (data.num_classes != K) {
        app_error("%s has %d classes, %s %d", data.source, data.num_classes, o->model, K);
        return 1;
    }
    for (int k = 0; k < K; k++)
        if (strcmp(data.class_names[k], mcnn_classifier_label(model, k)) != 0) {
            fprintf(stderr, "%s: warning: class %d is '%s' in the data, '%s' in the model\n",
                    app_name, k, data.class_names[k], mcnn_classifier_label(model, k));
            break;
        }
    o->no_augment = 1;
    const mcnn_transform tf = make_transform(model, o);
    mcnn_eval_result e;
    const double t0 = mcnn_seconds();
    CHECK(mcnn_evaluate(model, &data, &tf, o->eval_batch ? o->eval_batch : o->batch,
                        (float)o->threshold, &e));
    print_eval(data.source, &e, mcnn_seconds() - t0);
    if (o->confusion) print_confusion(&e, data.class_names);
    if (o->reference) reference_kappa(&e, &data, o);
    mcnn_eval_result_free(&e);
    mcnn_dataset_free(&data);
    mcnn_classifier_free(model);
    return 0;
}
