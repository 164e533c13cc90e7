/* The loss half of a golden training step, shared by the model tests: the loss of LOGITS
 * (n x classes) against the golden targets (cross-entropy on "targets", or BCE with
 * pos_weight on "multi_targets" and "pos_weight"), its gradient into DLOGITS, and the loss
 * checked against the golden PREFIX"loss".  Include after mcnn_test.h. */
#ifndef MCNN_LOSS_GOLDEN_H
#define MCNN_LOSS_GOLDEN_H

#include <mcnn/ops.h>

static inline void test_loss_golden(mcnn_safetensors *g, const char *prefix, int bce,
                                    const float *logits, float *dlogits, int n, int classes)
{
    float *probs = malloc(sizeof(float) * (size_t)n * classes);
    float loss;
    if (bce) {
        float *targets = test_golden(g, "multi_targets", NULL);
        float *pos_weight = test_golden(g, "pos_weight", NULL);
        loss = mcnn_bce_logits_forward(logits, targets, pos_weight, n, classes);
        mcnn_bce_logits_backward(dlogits, logits, targets, pos_weight, n, classes, 1.0f);
        free(targets);
        free(pos_weight);
    } else {
        int32_t *targets = test_golden_i32(g, "targets", NULL);
        loss = mcnn_cross_entropy_forward(probs, logits, targets, n, classes, 0.0f);
        mcnn_cross_entropy_backward(dlogits, probs, targets, n, classes, 0.0f, 1.0f);
        free(targets);
    }
    free(probs);
    char key[160];
    snprintf(key, sizeof key, "%sloss", prefix);
    float *want_loss = test_golden(g, key, NULL);
    if (want_loss) TEST_CLOSE(key, loss, want_loss[0], 1e-5, 0);
    free(want_loss);
}

#endif
