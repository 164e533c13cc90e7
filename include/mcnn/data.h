/* Labelled image data sets for training and evaluating classifiers, the batches a model eats,
 * and the metrics that judge it.
 *
 * Three sources, one struct:
 *   - IDX files (MNIST, Fashion-MNIST; gzipped or not), held in memory as 8-bit pixels;
 *   - an ImageNet-style folder: one sub-folder per class, classes sorted by name (torchvision's
 *     ImageFolder), images decoded from disk batch by batch (PNG, JPEG, PPM/PGM);
 *   - a split file as MovieCLIP writes them, one sample a line, multi-label:
 *         <path> <label index> [<label index> ...]
 *     paths relative to a root folder, indices into a label list file (one name a line).
 * Errors name the file and the line: a missing image, a label index out of range, a line
 * without labels, an empty split, an unreadable file.
 *
 * A batch is (B, C, S, S) floats, normalised ((x / 255 - mean) / std), with the labels (B) or
 * multi-label targets (B, K).  Training augmentation: random crop of the zero-padded image +
 * horizontal flip for small in-memory images (the CIFAR/Fashion-MNIST recipe), torchvision's
 * RandomResizedCrop + flip for decoded files.  Evaluation: the image as it is (small images), or
 * resize the shorter side + center crop (files), as torchvision's eval transforms. */
#ifndef MCNN_DATA_H
#define MCNN_DATA_H

#include "core.h"
#include "image.h"
#include "preprocess.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcnn_dataset {
    int count;             /* N samples                                                      */
    int num_classes;       /* K                                                              */
    char **class_names;    /* K names (NUL-terminated UTF-8)                                 */
    int multi_label;       /* 1: targets is the truth; 0: labels is                          */
    int32_t *labels;       /* (N): the class (single-label); the first label (multi-label)   */
    unsigned char *targets;/* (N, K) 0/1 when multi_label, else NULL                         */
    /* in memory (IDX): pixels (N, channels, height, width), 8-bit; NULL for files */
    unsigned char *pixels;
    int channels, height, width;
    /* on disk: N full paths, and the line of the split file each came from (0: a folder) */
    char **paths;
    int *lines;
    char source[512];      /* the file or folder the samples came from, for messages         */
    /* decoding failures: by default a batch with an undecodable image fails naming it (and its
     * line).  After mcnn_dataset_skip_corrupt the sample is replaced by the next decodable one
     * and warn (if set) is told, once per bad file; bad[] remembers them. */
    int skip_corrupt;
    void (*warn)(void *ctx, const char *message);
    void *warn_ctx;
    unsigned char *bad;    /* (N) 1 for samples found undecodable (with skip_corrupt)         */
} mcnn_dataset;

/* IDX files (big-endian dims, magic 0x0000 08 ndim; gzip detected by its magic): images
 * (N, H, W) and labels (N), both unsigned bytes.  Classes: 1 + the largest label, unnamed
 * ("0", "1", ...) until mcnn_dataset_set_class_names. */
MCNN_API mcnn_status mcnn_dataset_load_idx(mcnn_dataset *ds, const char *images_path,
                                           const char *labels_path);
/* Fashion-MNIST from a folder holding train-images-idx3-ubyte[.gz] and the other three (as
 * Debian's dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist), with its
 * ten class names.  train = 1: the 60000 training images; 0: the 10000 test images. */
MCNN_API mcnn_status mcnn_dataset_load_fashion_mnist(mcnn_dataset *ds, const char *dir,
                                                     int train);
#define MCNN_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#define MCNN_FASHION_MNIST_MEAN 0.2860f /* of the training pixels / 255 */
#define MCNN_FASHION_MNIST_STD 0.3530f

/* One sub-folder per class, sorted by name (bytes); the image files in each (.png .jpg .jpeg
 * .ppm .pgm .pnm, any case; hidden files skipped), sorted.  A class folder without images is an
 * error naming it, as in torchvision's ImageFolder. */
MCNN_API mcnn_status mcnn_dataset_load_folder(mcnn_dataset *ds, const char *root);

/* A MovieCLIP split: labels_path has one class name a line; each non-blank line of split_path
 * is "<path> <index> [<index> ...]", path relative to root (or absolute).  Blank lines and lines
 * starting with '#' are skipped.  Every image is checked to exist (not decoded).  multi_label
 * is set when any line has more than one label. */
MCNN_API mcnn_status mcnn_dataset_load_split(mcnn_dataset *ds, const char *split_path,
                                             const char *root, const char *labels_path);

/* Read a label list into K names: one name a line, spaces and tabs around it removed, a UTF-8
 * BOM and CRLF line ends accepted, trailing blank lines ignored; gzipped or not.  Refused, with
 * the file and line: invalid UTF-8, a NUL or other control character (C0, DEL, C1) in a name,
 * a blank line before the last name, a name that repeats an earlier one, more than 100000
 * lines, a line over 1024 bytes, a file over 16 MB (inflated), no names at all. */
MCNN_API mcnn_status mcnn_read_label_list(char ***names, int *count, const char *path);
MCNN_API void mcnn_free_label_list(char **names, int count);
/* Replace the class names (copied); count must equal ds->num_classes. */
MCNN_API mcnn_status mcnn_dataset_set_class_names(mcnn_dataset *ds, const char *const *names,
                                                  int count);

/* dst = the samples indices[0..n) of src, in that order (copies; dst must be empty). */
MCNN_API mcnn_status mcnn_dataset_subset(mcnn_dataset *dst, const mcnn_dataset *src,
                                         const int *indices, int n);
/* Carve a held-out split: round(fraction · N) samples drawn without replacement (seeded
 * Fisher-Yates shuffle) go to val, the rest to train; each keeps the source's order. */
MCNN_API mcnn_status mcnn_dataset_split(mcnn_dataset *train, mcnn_dataset *val,
                                        const mcnn_dataset *src, double fraction, uint64_t seed);
MCNN_API void mcnn_dataset_free(mcnn_dataset *ds);
/* Opt in to skipping undecodable images with a warning (see the struct). */
MCNN_API mcnn_status mcnn_dataset_skip_corrupt(mcnn_dataset *ds,
                                               void (*warn)(void *ctx, const char *message),
                                               void *ctx);

/* Everything that would otherwise fail in the middle of a run, checked up front: the class
 * names (non-empty, valid UTF-8, no control characters, no two alike) and, for image files, a
 * dry read of every header (a known format, a size within MCNN_IMAGE_MAX_PIXELS; headers only,
 * so a damaged body still fails at its batch).  With skip_corrupt, unreadable files are marked
 * bad and warned about instead, and only a set with no readable image fails.  Errors name the
 * file and its line. */
MCNN_API mcnn_status mcnn_dataset_check(mcnn_dataset *ds);
/* A 64-bit hash of what a run trains on, to recognise the same data when it resumes: the
 * count, class names, labels and targets, and the pixels (in memory) or each file's path and
 * size (on disk; a missing file is an error). */
MCNN_API mcnn_status mcnn_dataset_fingerprint(const mcnn_dataset *ds, uint64_t *out);

/* Per class: samples with the label (K counts).  Multi-label: positives per class. */
MCNN_API void mcnn_dataset_class_counts(const mcnn_dataset *ds, int64_t *counts);
/* BCE's pos_weight from the label counts: negatives / positives per class (K floats).  A class
 * without positives gets 1 (nothing to weigh). */
MCNN_API void mcnn_dataset_pos_weight(const mcnn_dataset *ds, float *pos_weight);

/* ---- batches ------------------------------------------------------------------------------ */
/* How a data set's samples become a model's input: the model's preprocessing (the one settings
 * type of preprocess.h) and, for training batches, the augmentation on top of it. */
typedef struct mcnn_transform {
    /* the evaluation pipeline, as mcnn_preprocess runs it: output crop x crop (crop > 0) with
     * the given channels, mean and std.  Files: shorter side resized to resize (0: none), then
     * center-cropped.  In-memory images of the output size are only normalised; others have
     * their shorter side resized to crop (with filter) and are center-cropped. */
    mcnn_preprocess_config preprocess;
    /* training augmentation (used when the batch asks for it) */
    int pad;                     /* in-memory images: random crop from the image padded by pad
                                    zeros (torchvision's RandomCrop(S, padding=pad))          */
    mcnn_augment_config augment; /* files: RandomResizedCrop's scale and ratio; all images:
                                    a mirror with probability flip_p                          */
} mcnn_transform;

/* Defaults for a model's input: size and channels given; mean/std from the data (Fashion-MNIST's
 * for gray, ImageNet's for colour), resize = size·256/224 for files, bilinear, pad size/7
 * (4 for 28), flip 0.5, RandomResizedCrop scale (0.08, 1), ratio (3/4, 4/3).  A classifier's
 * transform: the default's augmentation with .preprocess = *mcnn_classifier_get_preprocess(c). */
MCNN_API mcnn_transform mcnn_transform_default(int size, int channels);

/* Fill images (B, channels, crop, crop) (t->preprocess's) and labels (B) and/or targets (B, K) (either may be
 * NULL) for the samples indices[0..B).  augment = 1 applies the random augmentation with draws
 * from rng: one number per batch, from which each sample's own stream is seeded, so the result
 * does not depend on the thread count (files are decoded in parallel). */
MCNN_API mcnn_status mcnn_dataset_batch(const mcnn_dataset *ds, const int *indices, int B,
                                        const mcnn_transform *t, int augment, mcnn_rng *rng,
                                        float *images, int32_t *labels, float *targets);

/* The small-image augmentation on its own: out (C, H, W) = in (C, H, W) shifted by (dy, dx) in
 * [-pad, pad] with zeros filling in, then mirrored when flip.  8-bit, any channels. */
MCNN_API void mcnn_augment_shift_flip(unsigned char *out, const unsigned char *in, int C, int H,
                                      int W, int dy, int dx, int flip);

/* ---- metrics ------------------------------------------------------------------------------ *
 * scores (N, K): logits or probabilities (only the order matters, except for F1's threshold on
 * probabilities).  Single-label truth: labels (N).  Multi-label truth: targets (N, K) 0/1.   */

/* Fraction of rows whose label is among the k highest scores (ties: the lower index first,
 * as torch.topk on distinct values). */
MCNN_API double mcnn_topk_accuracy(const float *scores, const int32_t *labels, int N, int K,
                                   int k);
/* cm (K, K) int64, row = truth, column = prediction: cm[t·K + p] += 1 for each sample. */
MCNN_API void mcnn_confusion_matrix(int64_t *cm, const int32_t *truth, const int32_t *pred, int N,
                                    int K);
/* Mean over classes present in the truth of the recall (cm[k][k] / row k's sum). */
MCNN_API double mcnn_mean_class_accuracy(const int64_t *cm, int K);
/* The k best classes of one row of scores (K), best first, into index (k ints; k <= K): ties
 * go to the lower index, as torch.topk on distinct values and mcnn_topk_accuracy. */
MCNN_API void mcnn_topk(int *index, const float *scores, int K, int k);
/* The row-wise argmax (first of ties), as torch.argmax. */
MCNN_API void mcnn_argmax_rows(int32_t *pred, const float *scores, int N, int K);
/* Cohen's kappa between two labellings given as their confusion matrix (K, K):
 *   kappa = (p_o - p_e) / (1 - p_e),  p_o = trace / n,  p_e = Σ_k rowₖ·colₖ / n²
 * as sklearn.metrics.cohen_kappa_score (which gives NaN where p_e = 1; this gives 1). */
MCNN_API double mcnn_cohen_kappa(const int64_t *cm, int K);

/* Average precision of one class, as sklearn.metrics.average_precision_score:
 *   AP = Σₙ (Rₙ - Rₙ₋₁) Pₙ over the distinct score thresholds, highest first
 *   (tied scores form one threshold).  score and truth are read with a stride (K for a column
 *   of (N, K)).
 * Returns NaN when the class has no positive. */
MCNN_API double mcnn_average_precision(const float *score, const unsigned char *truth, int N,
                                       int stride);
/* Mean AP over the classes with at least one positive; per_class (K, may be NULL) gets each
 * AP (NaN for classes without positives: sklearn would count them as 0 with a warning). */
MCNN_API double mcnn_mean_average_precision(const float *scores, const unsigned char *targets,
                                            int N, int K, double *per_class);
/* F1 of the decisions prob > threshold against targets: micro (TP, FP, FN pooled over all
 * classes) and macro (mean of each class's F1; a class with no positives and no predictions
 * scores 0, sklearn's zero_division default).  probs (N, K) are probabilities. */
MCNN_API void mcnn_f1_scores(double *micro, double *macro, const float *probs,
                             const unsigned char *targets, int N, int K, float threshold);

#ifdef __cplusplus
}
#endif
#endif
