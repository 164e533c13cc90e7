/* mcnn-train: train or fine-tune an image classifier (ResNet, ViT) and evaluate it.
 *
 *   mcnn-train [train] --data SOURCE [--val SOURCE | --val-split F] --arch ARCH --out DIR ...
 *   mcnn-train --resume --out DIR                 continue an interrupted run exactly
 *   mcnn-train eval --model FILE --data SOURCE    the metrics of a trained model
 *
 * Flow: options -> data (train, held-out) -> model (new, or --init checkpoint with a new head)
 *   -> trainer -> for each epoch: steps (progress, CSV rows, Ctrl-C) -> evaluation -> checkpoint
 *   -> DIR/model.safetensors.  Everything numeric is the library's (include/mcnn/train.h);
 *   the app parses, prints and handles signals.  This file is the entry point; apps/train/
 *   holds the parts, one job each (apps/train/train.h lists them). */
#define _POSIX_C_SOURCE 200809L
#include "train/train.h"

#include <stdio.h>
#include <string.h>

static int train_main(int argc, char **argv);

int main(int argc, char **argv)
{
    app_name = "mcnn-train";
    dist_init(&argc, &argv);
    static char name[64];
    if (dist_size() > 1) {
        snprintf(name, sizeof name, "mcnn-train (rank %d)", dist_rank());
        app_name = name;
    }
    return dist_finalize(train_main(argc, argv));
}

static int train_main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    options o;
    arg_spec specs[MAX_SPECS];
    int given[MAX_SPECS] = {0};
    default_options(&o);
    make_specs(specs, &o);
    for (int i = 0; specs[i].kind != ARG_END; i++) /* which options the command line gives */
        if (!specs[i].seen) specs[i].seen = &given[i];
    int first = 1, is_eval = 0;
    if (argc > 1 && strcmp(argv[1], "eval") == 0) first = 2, is_eval = 1;
    else if (argc > 1 && strcmp(argv[1], "train") == 0) first = 2;
    arg_strings pos = {0};
    argv[first - 1] = argv[0];
    const int parsed = args_parse(specs, argc - first + 1, argv + first - 1, &pos);
    if (parsed == ARGS_HELP) args_help(stdout, train_usage, specs, train_epilog);
    if (parsed == ARGS_OK && pos.count)
        app_error("unexpected argument '%s' (see --help)", pos.items[0]);
    const int bad = parsed == ARGS_ERROR || (parsed == ARGS_OK && pos.count);
    args_strings_free(&pos);
    if (parsed == ARGS_HELP) return EXIT_DONE;
    if (bad) return EXIT_USAGE;
    if (dist_rank() > 0) o.quiet = 1; /* rank 0 alone reports */
    if (is_eval) return cmd_eval(&o);
    if (o.resume) return resume(&o, specs);
    char *args = join_argv(argc - first + 1, argv + first - 1);
    if (!args) {
        app_error("out of memory");
        return EXIT_FAILED;
    }
    const int status = cmd_train(&o, args);
    free(args);
    return status;
}

