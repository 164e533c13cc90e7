/* mcnn-shots: the MovieCLIP pipeline from tags to a trained and evaluated shot model.
 *
 *   mcnn-classify --video a.mp4 --video b.mp4 --json tags.json        (tagging, shots)
 *   mcnn-shots split    --tags tags.json --labels labels-150.txt --out splits
 *   mcnn-shots features --tags tags.json --model vit_b_16.pth --fps 4 --max-frames 20 --out feats
 *   mcnn-shots train    --features feats --splits splits --arch lstm --out runs/lstm
 *   mcnn-shots eval     --model runs/lstm/model.safetensors --features feats
 *                       --data splits/test.txt --labels splits/labels.txt --human human.txt
 *
 * One subcommand per file in apps/shots/ (shots.h); docs/movieclip.md walks through it. */
#include "common/args.h"
#include "common/outfile.h"
#include "shots/shots.h"

#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} commands[] = {
    {"split", shots_split_main, "weak labels from tags, split by video, pos_weight, report"},
    {"features", shots_features_main, "per-frame features of every shot, safetensors shards"},
    {"frames", shots_frames_main, "the sampled frames as images, a folder per shot (mcnn-train)"},
    {"train", shots_train_main, "a temporal shot model (mean / lstm / transformer)"},
    {"eval", shots_eval_main, "mAP, per-class AP, F1, top-k, kappa against human labels"},
    {"probe", shots_probe_main, "a linear or MLP probe on the features for your own labels"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: mcnn-shots COMMAND [options]   (mcnn-shots COMMAND --help for each)\n\n"
               "The MovieCLIP pipeline after mcnn-classify's tagging (docs/movieclip.md):\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].what);
    fprintf(f, "\nExit status: 0 done, 1 failed (with a message), 2 bad command line.\n");
}

int main(int argc, char **argv)
{
    app_name = "mcnn-shots";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : (app_close_stdout() ? 1 : 0);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            const int rc = commands[i].run(argc - 1, argv + 1);
            return app_close_stdout() && rc == 0 ? 1 : rc;
        }
    app_error("unknown command '%s' (split, features, frames, train, eval, probe)", argv[1]);
    return 2;
}
