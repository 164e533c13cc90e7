/* Classification metrics.
 * Single-label: top-k accuracy, confusion matrix, mean per-class accuracy (balanced accuracy),
 * Cohen's kappa.  Multi-label: average precision per class and its mean (mAP), micro and macro
 * F1 at a threshold.  Sums are in double or int64; nothing here allocates except AP's sort. */
#include "internal.h"
#include "mcnn/data.h"

#include <math.h>
#include <stdlib.h>

double mcnn_topk_accuracy(const float *scores, const int32_t *labels, int N, int K, int k)
{
    if (N <= 0) return NAN;
    int64_t hits = 0;
    for (int n = 0; n < N; n++) {
        const float *s = scores + (size_t)n * K;
        const int y = labels[n];
        int above = 0; /* classes ranked before the label: higher score, or equal and earlier */
        for (int c = 0; c < K && above < k; c++)
            above += s[c] > s[y] || (s[c] == s[y] && c < y);
        hits += above < k;
    }
    return (double)hits / N;
}

/* Selection, k passes: each takes the best class not yet taken (the earlier one on ties). */
void mcnn_topk(int *index, const float *scores, int K, int k)
{
    for (int r = 0; r < k && r < K; r++) {
        int best = -1;
        for (int c = 0; c < K; c++) {
            int taken = 0;
            for (int q = 0; q < r && !taken; q++) taken = index[q] == c;
            if (!taken && (best < 0 || scores[c] > scores[best])) best = c;
        }
        index[r] = best;
    }
}

void mcnn_argmax_rows(int32_t *pred, const float *scores, int N, int K)
{
    for (int n = 0; n < N; n++) {
        const float *s = scores + (size_t)n * K;
        int best = 0;
        for (int c = 1; c < K; c++)
            if (s[c] > s[best]) best = c;
        pred[n] = best;
    }
}

void mcnn_confusion_matrix(int64_t *cm, const int32_t *truth, const int32_t *pred, int N, int K)
{
    for (size_t i = 0; i < (size_t)K * K; i++) cm[i] = 0;
    for (int n = 0; n < N; n++)
        if (truth[n] >= 0 && truth[n] < K && pred[n] >= 0 && pred[n] < K)
            cm[(size_t)truth[n] * K + pred[n]]++;
}

double mcnn_mean_class_accuracy(const int64_t *cm, int K)
{
    double sum = 0.0;
    int present = 0;
    for (int t = 0; t < K; t++) {
        int64_t row = 0;
        for (int p = 0; p < K; p++) row += cm[(size_t)t * K + p];
        if (!row) continue;
        sum += (double)cm[(size_t)t * K + t] / (double)row;
        present++;
    }
    return present ? sum / present : NAN;
}

double mcnn_cohen_kappa(const int64_t *cm, int K)
{
    double n = 0.0, agree = 0.0, chance = 0.0;
    for (int t = 0; t < K; t++)
        for (int p = 0; p < K; p++) n += (double)cm[(size_t)t * K + p];
    if (n == 0.0) return NAN;
    for (int k = 0; k < K; k++) {
        double row = 0.0, col = 0.0;
        for (int j = 0; j < K; j++)
            row += (double)cm[(size_t)k * K + j], col += (double)cm[(size_t)j * K + k];
        agree += (double)cm[(size_t)k * K + k];
        chance += row * col;
    }
    const double po = agree / n, pe = chance / (n * n);
    return pe == 1.0 ? 1.0 : (po - pe) / (1.0 - pe);
}

typedef struct scored {
    float score;
    unsigned char truth;
} scored;

static int by_score_desc(const void *a, const void *b)
{
    const float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x < y) - (x > y);
}

double mcnn_average_precision(const float *score, const unsigned char *truth, int N, int stride)
{
    scored *v = malloc((size_t)(N > 0 ? N : 1) * sizeof *v);
    if (!v) return NAN;
    int64_t positives = 0;
    for (int n = 0; n < N; n++) {
        v[n].score = score[(size_t)n * stride];
        v[n].truth = truth[(size_t)n * stride] != 0;
        positives += v[n].truth;
    }
    if (!positives) {
        free(v);
        return NAN;
    }
    qsort(v, (size_t)N, sizeof *v, by_score_desc);
    /* One point of the precision-recall curve per distinct score: every sample tied at a
     * threshold is counted at once, as sklearn's _binary_clf_curve does. */
    int64_t tp = 0, fp = 0;
    double ap = 0.0, prev_recall = 0.0;
    for (int n = 0; n < N;) {
        int m = n;
        while (m < N && v[m].score == v[n].score) tp += v[m].truth, fp += !v[m].truth, m++;
        const double recall = (double)tp / positives, precision = (double)tp / (tp + fp);
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        n = m;
    }
    free(v);
    return ap;
}

double mcnn_mean_average_precision(const float *scores, const unsigned char *targets, int N, int K,
                                   double *per_class)
{
    double sum = 0.0;
    int present = 0;
    for (int k = 0; k < K; k++) {
        const double ap = mcnn_average_precision(scores + k, targets + k, N, K);
        if (per_class) per_class[k] = ap;
        if (!isnan(ap)) sum += ap, present++;
    }
    return present ? sum / present : NAN;
}

void mcnn_f1_scores(double *micro, double *macro, const float *probs, const unsigned char *targets,
                    int N, int K, float threshold)
{
    int64_t TP = 0, FP = 0, FN = 0;
    double macro_sum = 0.0;
    for (int k = 0; k < K; k++) {
        int64_t tp = 0, fp = 0, fn = 0;
        for (int n = 0; n < N; n++) {
            const int pred = probs[(size_t)n * K + k] > threshold;
            const int truth = targets[(size_t)n * K + k] != 0;
            tp += pred && truth, fp += pred && !truth, fn += !pred && truth;
        }
        const int64_t denom = 2 * tp + fp + fn; /* F1 = 2TP / (2TP + FP + FN) */
        macro_sum += denom ? 2.0 * tp / denom : 0.0;
        TP += tp, FP += fp, FN += fn;
    }
    const int64_t denom = 2 * TP + FP + FN;
    if (micro) *micro = denom ? 2.0 * TP / denom : 0.0;
    if (macro) *macro = K ? macro_sum / K : NAN;
}
