/* Data-parallel training on this machine: the demo recipes (docs/demo.md) on Fashion-MNIST,
 * limited to a few steps, run as
 *   1 rank  x 1 thread    (the reference)
 *   1 rank  x 2 threads   (OpenMP inside one process)
 *   2 ranks x 1 thread    (mpirun -np 2 build/mpi/mcnn-train)
 * giving each one's training images/s (from the run's log.csv: the last step's rate), the
 * scaling efficiency of 2 ranks against 1 rank x 2 threads, and the gradient allreduce's cost
 * per step (what mcnn-train prints on several ranks).  Needs `make MPI=1`, mpirun and Debian's
 * dataset-fashion-mnist.  Run it under the CPU lock: flock /tmp/mcnn-cpu.lock build/bench/bench_mpi */
#define _XOPEN_SOURCE 700
#include "mcnn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp[256];

/* Run cmd (output into tmp/out.txt); 0 when it succeeded. */
static int run(const char *cmd)
{
    char line[8600];
    snprintf(line, sizeof line, "%s >'%s/out.txt' 2>&1", cmd, tmp);
    return system(line);
}

/* The images/s of the last step row of dir/log.csv (column 7). */
static double last_rate(const char *dir)
{
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    FILE *f = fopen(path, "r");
    double rate = 0;
    while (f && fgets(line, sizeof line, f)) {
        double v;
        if (strncmp(line, "step,", 5) == 0 &&
            sscanf(line, "step,%*d,%*d,%*g,%*g,%*g,%lf", &v) == 1)
            rate = v;
    }
    if (f) fclose(f);
    return rate;
}

/* "gradient allreduce: X ms per step" from the last run's output, or -1. */
static double allreduce_ms(void)
{
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/out.txt", tmp);
    FILE *f = fopen(path, "r");
    double ms = -1;
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "gradient allreduce: ");
        if (p) ms = atof(p + 20);
    }
    if (f) fclose(f);
    return ms;
}

int main(int argc, char **argv)
{
    const char *build = argc > 1 ? argv[1] : "build";
    const char *fm = getenv("MCNN_FASHION_MNIST");
    fm = fm ? fm : "/usr/share/datasets/fashion-mnist";
    char train[512], mpi_train[512], probe[600];
    snprintf(train, sizeof train, "%s/mcnn-train", build);
    snprintf(mpi_train, sizeof mpi_train, "%s/mpi/mcnn-train", build);
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", fm);
    if (access(mpi_train, X_OK) || system("command -v mpirun >/dev/null") || access(probe, R_OK)) {
        fprintf(stderr, "bench_mpi needs %s (make MPI=1), mpirun and %s\n", mpi_train, probe);
        return 1;
    }
    snprintf(tmp, sizeof tmp, "/tmp/mcnn_bench_mpi_%d", (int)getpid());
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp);
    if (system(cmd)) return 1;
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
    setenv("OMP_WAIT_POLICY", "passive", 0);
    const struct { const char *name, *recipe; } demo[] = {
        {"resnet-small (demo)", "--arch resnet-small --width 24 --depth 1 --batch 128 --pad 2"},
        {"vit-small (demo)", "--arch vit-small --patch 7 --width 96 --depth 4 --batch 128 --pad 0"},
    };
    printf("%-20s %9s %11s %11s %11s %10s %13s %14s\n", "model", "params", "1x1 img/s",
           "1x2 img/s", "2x1 img/s", "2x1 / 1x2", "allreduce ms", "% of a step");
    for (int m = 0; m < 2; m++) {
        double rate[3];
        double ms = -1;
        for (int k = 0; k < 3; k++) {
            const char *how = k == 0 ? "1x1" : k == 1 ? "1x2" : "2x1";
            char out[400], launch[1024];
            snprintf(out, sizeof out, "%s/%d-%s", tmp, m, how);
            if (k < 2)
                snprintf(launch, sizeof launch, "'%s' --threads %d", train, k + 1);
            else
                snprintf(launch, sizeof launch, "mpirun --allow-run-as-root --oversubscribe "
                         "-np 2 '%s' --threads 1", mpi_train);
            snprintf(cmd, sizeof cmd, "%s --data fashion-mnist:train --idx-dir '%s' --limit 3840 "
                     "--epochs 1 --warmup 0.5 -q %s --out '%s'", launch, fm, demo[m].recipe, out);
            if (run(cmd)) {
                fprintf(stderr, "failed: %s (see %s/out.txt)\n", cmd, tmp);
                return 1;
            }
            rate[k] = last_rate(out);
            if (k == 2) ms = allreduce_ms();
        }
        /* the parameter count, from the model the runs wrote */
        mcnn_classifier *c;
        char model[512];
        snprintf(model, sizeof model, "%s/%d-1x1/model.safetensors", tmp, m);
        double params = 0;
        if (mcnn_classifier_load(&c, model, NULL) == MCNN_OK) {
            params = (double)mcnn_classifier_params(c)->total;
            mcnn_classifier_free(c);
        }
        const double step_ms = 1e3 * 128 / rate[2];
        printf("%-20s %8.2fM %11.0f %11.0f %11.0f %9.0f%% %13.2f %13.1f%%\n", demo[m].name,
               params / 1e6, rate[0], rate[1], rate[2], 100 * rate[2] / rate[1], ms,
               100 * ms / step_ms);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) ? 1 : 0;
}
