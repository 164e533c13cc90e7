/* The data of a run: a SOURCE loaded and checked before anything trains, and the record of
 * each set (size and fingerprint) that a resumed run must find again. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void warn_corrupt(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "\n%s: warning: skipping %s\n", app_name, msg);
}

/* Keep the first n samples. */
static void limit_data(mcnn_dataset *ds, int n)
{
    if (n <= 0 || n >= ds->count) return;
    int *idx = malloc((size_t)n * sizeof *idx);
    if (!idx) {
        app_error("out of memory");
        exit(EXIT_FAILED);
    }
    for (int i = 0; i < n; i++) idx[i] = i;
    mcnn_dataset sub;
    CHECK(mcnn_dataset_subset(&sub, ds, idx, n));
    free(idx);
    mcnn_dataset_free(ds);
    *ds = sub;
}

/* Load a SOURCE (see usage) given to option opt, keep its first `limit` samples (0: all), and
 * check what would otherwise fail mid-run: class names and every image header. */
void load_source(mcnn_dataset *ds, const char *src, const options *o, const char *opt,
                        int limit)
{
    struct stat sb;
    if (strcmp(src, "fashion-mnist:train") == 0 || strcmp(src, "fashion-mnist") == 0) {
        CHECK(mcnn_dataset_load_fashion_mnist(ds, o->idx_dir, 1));
    } else if (strcmp(src, "fashion-mnist:test") == 0) {
        CHECK(mcnn_dataset_load_fashion_mnist(ds, o->idx_dir, 0));
    } else if (strncmp(src, "idx:", 4) == 0) {
        char buf[2048];
        snprintf(buf, sizeof buf, "%s", src + 4);
        char *comma = strchr(buf, ',');
        if (!comma) {
            app_error("%s %s: expected idx:IMAGES,LABELS", opt, src);
            exit(EXIT_USAGE);
        }
        *comma = 0;
        CHECK(mcnn_dataset_load_idx(ds, buf, comma + 1));
    } else if (stat(src, &sb) != 0) {
        app_error("%s %s: %s (expected a folder of class folders, a split file, "
                  "fashion-mnist:train|test or idx:IMAGES,LABELS)", opt, src, strerror(errno));
        exit(EXIT_USAGE);
    } else if (S_ISDIR(sb.st_mode)) {
        CHECK(mcnn_dataset_load_folder(ds, src));
    } else {
        if (!o->labels) {
            app_error("%s %s: a split file needs --labels FILE (the label list)", opt, src);
            exit(EXIT_USAGE);
        }
        CHECK(mcnn_dataset_load_split(ds, src, o->root, o->labels));
    }
    limit_data(ds, limit);
    if (o->skip_corrupt) CHECK(mcnn_dataset_skip_corrupt(ds, warn_corrupt, NULL));
    CHECK(mcnn_dataset_check(ds));
}

void check_same_classes(const mcnn_dataset *a, const mcnn_dataset *b)
{
    int same = a->num_classes == b->num_classes;
    for (int k = 0; same && k < a->num_classes; k++)
        same = strcmp(a->class_names[k], b->class_names[k]) == 0;
    if (!same) {
        app_error("%s and %s do not have the same classes (%d and %d, or other names)", a->source,
                  b->source, a->num_classes, b->num_classes);
        exit(EXIT_FAILED);
    }
}

/* Each data set's size and fingerprint, a line each ("train 60000 3f2a..."): what a resumed
 * run must find again. */
void data_record(char *buf, size_t size, const mcnn_dataset *const sets[3])
{
    static const char *const names[3] = {"train", "val", "test"};
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t h;
        if (!sets[i]->count) continue;
        CHECK(mcnn_dataset_fingerprint(sets[i], &h));
        n += (size_t)snprintf(buf + n, size - n, "%s%s %d %016" PRIx64, n ? "\n" : "", names[i],
                              sets[i]->count, h);
    }
}

/* "N samples (fingerprint H)" or "none" for one set of a data record. */
static void describe_set(char *out, size_t size, const char *record, const char *name)
{
    snprintf(out, size, "none");
    for (const char *line = record; line && *line;) {
        char set[16], hash[17];
        int count;
        if (sscanf(line, "%15s %d %16s", set, &count, hash) == 3 && strcmp(set, name) == 0)
            snprintf(out, size, "%d samples (fingerprint %s)", count, hash);
        line = strchr(line, '\n'); /* the next line, or NULL (never NULL + 1) */
        if (line) line++;
    }
}

/* A resumed run's data against what the run recorded when it started. */
int check_same_data(const char *recorded, const char *now, const char *ckpt)
{
    if (!recorded || strcmp(recorded, now) == 0) return 0;
    static const char *const names[3] = {"train", "val", "test"};
    for (int i = 0; i < 3; i++) {
        char was[96], is[96];
        describe_set(was, sizeof was, recorded, names[i]);
        describe_set(is, sizeof is, now, names[i]);
        if (strcmp(was, is) != 0) {
            app_error("%s: the %s data is not the run's: %s when it started, %s now (resume "
                      "with the same data: relative paths are read from the folder the run "
                      "started in)", ckpt, i == 0 ? "training" : i == 1 ? "held-out" : "test",
                      was, is);
            return -1;
        }
    }
    return 0;
}
