/* Fuzz the label-list and split-file readers (lib/data/dataset.c): a label list alone, then
 * a split file and its label list given as one input cut at FUZZ_SEPARATOR
 * (labels, separator, split).  The split's image paths are resolved against a small folder
 * this driver makes once, holding a.png, b.jpg and sub/c.ppm (they are stat'ed, not decoded). */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];

static void touch(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", root, name);
    FILE *f = fopen(path, "wb");
    if (f) fclose(f);
}

/* The image folder, made once per process: one per user, shared by every run (replay runs each
 * input in a new process) and left in /tmp, three empty files that every run makes the same. */
static const char *image_root(void)
{
    if (!root[0]) {
        snprintf(root, sizeof root, "/tmp/mcnn-fuzz-split-%ld", (long)getuid());
        char sub[96];
        snprintf(sub, sizeof sub, "%s/sub", root);
        mkdir(root, 0700);
        mkdir(sub, 0700);
        touch("a.png"), touch("b.jpg"), touch("sub/c.ppm");
    }
    return root;
}

static void check_dataset(const mcnn_dataset *ds)
{
    for (int i = 0; i < ds->count; i++) {
        if (ds->labels[i] < 0 || ds->labels[i] >= ds->num_classes) abort();
        if (ds->multi_label && !ds->targets[(size_t)i * ds->num_classes + ds->labels[i]]) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *labels = data, *split = NULL;
    size_t labels_size = size, split_size = 0;
    fuzz_split(data, size, &labels, &labels_size, &split, &split_size);
    const char *labels_path = fuzz_file(0, labels, labels_size);
    if (!labels_path) return 0;
    char **names;
    int K;
    if (mcnn_read_label_list(&names, &K, labels_path) == MCNN_OK) {
        for (int k = 0; k < K; k++)
            if (!names[k] || !names[k][0]) abort(); /* no blank names */
        mcnn_free_label_list(names, K);
    }
    if (!split) return 0;
    const char *split_path = fuzz_file(1, split, split_size);
    mcnn_dataset ds;
    if (split_path && mcnn_dataset_load_split(&ds, split_path, image_root(), labels_path) == MCNN_OK) {
        check_dataset(&ds);
        mcnn_dataset_free(&ds);
    }
    return 0;
}
