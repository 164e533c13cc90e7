/* Training throughput of a shot model (shots per second): MovieCLIP's sizes by default, D = 768
 * features, K = 20 frames, 150 labels, batch 32, random lengths 8-20.  One line of output, read
 * by bench/compare_shot_models.py, which runs the same models in PyTorch alternately with this.
 *   build/bench/bench_shot_models lstm|transformer|mean [steps] [D] [hidden] */
#include "mcnn.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    enum { B = 32, K = 20, NC = 150 };
    mcnn_shot_config cfg = {.K = K, .num_classes = NC, .D = 768, .layers = 2, .seed = 1};
    if (argc < 2 || mcnn_shot_kind_parse(&cfg.kind, argv[1]) != MCNN_OK)
        return fprintf(stderr, "usage: %s lstm|transformer|mean [steps] [D] [hidden]\n", argv[0]), 2;
    const int steps = argc > 2 ? atoi(argv[2]) : 20;
    if (argc > 3) cfg.D = atoi(argv[3]);
    if (argc > 4) cfg.hidden = atoi(argv[4]);
    mcnn_shot_model *m = NULL;
    mcnn_shot_trainer t;
    if (mcnn_shot_model_create(&m, &cfg, B) != MCNN_OK || mcnn_shot_trainer_init(&t, m) != MCNN_OK)
        return fprintf(stderr, "bench_shot_models: %s\n", mcnn_last_error()), 1;
    float *x = malloc(sizeof(float) * B * K * cfg.D), *y = malloc(sizeof(float) * B * NC);
    int32_t len[B];
    mcnn_rng r;
    mcnn_rng_seed(&r, 2);
    for (size_t i = 0; i < (size_t)B * K * cfg.D; i++) x[i] = mcnn_rng_normal(&r);
    for (int i = 0; i < B * NC; i++) y[i] = mcnn_rng_uniform(&r) < 0.05f;
    for (int b = 0; b < B; b++) len[b] = 8 + (int)mcnn_rng_below(&r, 13);
    mcnn_shot_train_step(m, &t, x, len, y, NULL, B, NULL, NULL); /* warm-up */
    const double t0 = mcnn_seconds();
    for (int s = 0; s < steps; s++)
        if (mcnn_shot_train_step(m, &t, x, len, y, NULL, B, NULL, NULL) != MCNN_OK)
            return fprintf(stderr, "bench_shot_models: %s\n", mcnn_last_error()), 1;
    const double sec = mcnn_seconds() - t0;
    printf("%s %.1f\n", argv[1], steps * B / sec);
    free(x), free(y);
    mcnn_shot_trainer_free(&t);
    mcnn_shot_model_free(m);
    return 0;
}
