/* Evaluation: the model over a whole data set, in order and without augmentation, then the
 * metrics of lib/data/metrics.c on its logits. */
#include "internal.h"
#include "mcnn/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mcnn_eval_result_free(mcnn_eval_result *r)
{
    if (!r) return;
    free(r->confusion);
    free(r->scores);
    memset(r, 0, sizeof *r);
}

static double softplus(double z) { return (z > 0 ? z : 0) + log1p(exp(-fabs(z))); }

/* Plain losses in double: CE = lse - x_y; BCE = mean of y·softplus(-x) + (1-y)·softplus(x). */
static double plain_loss(const mcnn_dataset *ds, const float *scores, int multi)
{
    const int N = ds->count, K = ds->num_classes;
    double sum = 0.0;
    for (int n = 0; n < N; n++) {
        const float *x = scores + (size_t)n * K;
        if (multi) {
            for (int k = 0; k < K; k++) {
                const double y = ds->targets ? ds->targets[(size_t)n * K + k]
                                             : (k == ds->labels[n]);
                sum += (y * softplus(-x[k]) + (1 - y) * softplus(x[k])) / K;
            }
        } else {
            double max = x[0], e = 0.0;
            for (int k = 1; k < K; k++) max = x[k] > max ? x[k] : max;
            for (int k = 0; k < K; k++) e += exp((double)x[k] - max);
            sum += max + log(e) - x[ds->labels[n]];
        }
    }
    return sum / N;
}

mcnn_status mcnn_evaluate(mcnn_classifier *model, const mcnn_dataset *data,
                          const mcnn_transform *tf, int batch, float threshold,
                          mcnn_eval_result *out)
{
    memset(out, 0, sizeof *out);
    const int N = data->count, K = data->num_classes;
    const int C = mcnn_classifier_in_channels(model), S = mcnn_classifier_image_size(model);
    if (K != mcnn_classifier_num_classes(model))
        return mcnn_set_error(MCNN_ERR_ARG, "evaluate: %s has %d classes, the model %d",
                              data->source, K, mcnn_classifier_num_classes(model));
    if (tf->preprocess.crop != S || tf->preprocess.channels != C)
        return mcnn_set_error(MCNN_ERR_ARG, "evaluate: batches of %d x %d x %d for a model taking "
                              "%d x %d x %d", tf->preprocess.channels, tf->preprocess.crop, tf->preprocess.crop, C, S, S);
    if (batch <= 0 || N <= 0)
        return mcnn_set_error(MCNN_ERR_ARG, "evaluate: batch %d over %d samples", batch, N);
    const int B = batch < N ? batch : N;
    const int multi = mcnn_classifier_multilabel(model) || data->multi_label;
    float *images = malloc((size_t)B * C * S * S * sizeof(float));
    float *logits = malloc((size_t)B * K * sizeof(float));
    int *idx = malloc((size_t)B * sizeof(int));
    out->scores = malloc((size_t)N * K * sizeof(float));
    mcnn_status s = MCNN_OK;
    if (!images || !logits || !idx || !out->scores)
        s = mcnn_set_error(MCNN_ERR_NOMEM, "evaluate: out of memory");
    /* Always full batches (the last one padded by repeating its final sample): the activation
     * memory stays planned for one shape, and eval-mode outputs do not depend on the batch. */
    for (int start = 0; s == MCNN_OK && start < N; start += B) {
        const int n = N - start < B ? N - start : B;
        for (int i = 0; i < B; i++) idx[i] = start + (i < n ? i : n - 1);
        s = mcnn_dataset_batch(data, idx, B, tf, 0, NULL, images, NULL, NULL);
        if (s == MCNN_OK) s = mcnn_classifier_forward(model, logits, images, B, 0);
        if (s == MCNN_OK)
            memcpy(out->scores + (size_t)start * K, logits, (size_t)n * K * sizeof(float));
    }
    free(images);
    free(logits);
    free(idx);
    if (s != MCNN_OK) {
        mcnn_eval_result_free(out);
        return s;
    }
    out->count = N, out->num_classes = K, out->multi_label = multi;
    out->loss = plain_loss(data, out->scores, multi);
    out->top1 = out->top5 = out->mean_class_acc = out->map = NAN;
    out->f1_micro = out->f1_macro = out->kappa = NAN;
    if (!multi) {
        int32_t *pred = malloc((size_t)N * sizeof *pred);
        out->confusion = calloc((size_t)K * K, sizeof(int64_t));
        if (!pred || !out->confusion) {
            free(pred);
            mcnn_eval_result_free(out);
            return mcnn_set_error(MCNN_ERR_NOMEM, "evaluate: out of memory");
        }
        mcnn_argmax_rows(pred, out->scores, N, K);
        mcnn_confusion_matrix(out->confusion, data->labels, pred, N, K);
        out->top1 = mcnn_topk_accuracy(out->scores, data->labels, N, K, 1);
        if (K >= 5) out->top5 = mcnn_topk_accuracy(out->scores, data->labels, N, K, 5);
        out->mean_class_acc = mcnn_mean_class_accuracy(out->confusion, K);
        out->kappa = mcnn_cohen_kappa(out->confusion, K);
        free(pred);
        return MCNN_OK;
    }
    /* multi-label: probabilities, the truth as 0/1 bytes */
    float *probs = malloc((size_t)N * K * sizeof(float));
    unsigned char *truth = malloc((size_t)N * K);
    if (!probs || !truth) {
        free(probs), free(truth);
        mcnn_eval_result_free(out);
        return mcnn_set_error(MCNN_ERR_NOMEM, "evaluate: out of memory");
    }
    for (size_t i = 0; i < (size_t)N * K; i++) {
        const double x = out->scores[i];
        probs[i] = (float)(x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)));
        truth[i] = data->targets ? data->targets[i] : (int)(i % K) == data->labels[i / K];
    }
    out->map = mcnn_mean_average_precision(out->scores, truth, N, K, NULL);
    mcnn_f1_scores(&out->f1_micro, &out->f1_macro, probs, truth, N, K, threshold);
    int64_t cm[4] = {0}; /* pooled binary decisions: row truth, column prediction */
    for (size_t i = 0; i < (size_t)N * K; i++) cm[truth[i] * 2 + (probs[i] > threshold)]++;
    out->kappa = mcnn_cohen_kappa(cm, 2);
    if (data->labels) { /* the top-1 still says something: is the best score a true label? */
        int64_t hit = 0;
        int32_t *pred = malloc((size_t)N * sizeof *pred);
        if (pred) {
            mcnn_argmax_rows(pred, out->scores, N, K);
            for (int n = 0; n < N; n++) hit += truth[(size_t)n * K + pred[n]];
            out->top1 = (double)hit / N;
            free(pred);
        }
    }
    free(probs);
    free(truth);
    return MCNN_OK;
}
