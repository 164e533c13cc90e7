/* bench/shot_learning.c on a small version: shots of Fashion-MNIST frames through the demo
 * ResNet, where "which class opens the shot" needs the frames' order.  The LSTM must learn it
 * and the mean-pool probe (which sees no order) must not: a shot model that ignored time, or
 * a backward through time that did not reach the early frames, fails here.  Skips when Debian's
 * dataset-fashion-mnist is absent. */
#define SHOT_LEARNING_NO_MAIN
#include "../bench/shot_learning.c"

#include "mcnn_test.h"

static void test_lstm_learns_order_the_mean_cannot(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", MCNN_FASHION_MNIST_DIR);
    FILE *f = fopen(p, "rb");
    if (!f) {
        snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", MCNN_FASHION_MNIST_DIR);
        f = fopen(p, "rb");
    }
    if (!f) {
        TEST_SKIP("%s is absent (Debian package dataset-fashion-mnist)", MCNN_FASHION_MNIST_DIR);
        return;
    }
    fclose(f);
    sl_shots train = {0}, test = {0};
    TEST_OK(sl_data(&train, &test, "weights/demo-fashion-resnet.safetensors", 640, 200, 2000,
                    600, 3));
    if (!train.n) return;
    sl_result mean, lstm;
    TEST_OK(sl_run(&mean, MCNN_SHOT_MEAN, &train, &test, 6, 3));
    TEST_OK(sl_run(&lstm, MCNN_SHOT_LSTM, &train, &test, 6, 3));
    printf("  first-class mAP: mean %.3f, lstm %.3f; present: mean %.3f, lstm %.3f\n",
           mean.group[1], lstm.group[1], mean.group[0], lstm.group[0]);
    TEST_ASSERT(lstm.group[1] > 0.8, "the LSTM learns which class comes first (mAP %.3f)",
                lstm.group[1]);
    TEST_ASSERT(mean.group[1] < lstm.group[1] - 0.2,
                "the mean-pool probe cannot (mAP %.3f vs the LSTM's %.3f)", mean.group[1],
                lstm.group[1]);
    TEST_ASSERT(mean.group[0] > 0.8, "the mean-pool probe sees which classes are present (%.3f)",
                mean.group[0]);
    sl_shots_free(&train), sl_shots_free(&test);
}

int main(void)
{
    TEST_RUN(test_lstm_learns_order_the_mean_cannot);
    return test_summary();
}
