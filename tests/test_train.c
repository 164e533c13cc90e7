/* The trainer, the data sets and the metrics.
 * Judges: PyTorch goldens for the optimizer steps of a tiny ViT and ResNet (CE with smoothing,
 * BCE with pos_weight from the label counts, a frozen-backbone probe; AdamW with two decay
 * groups, warm-up + cosine, clipping, accumulation: tests/ref/gen_train.py), numpy's direct
 * formulas and published examples for the metrics, numpy for the augmentation and IDX files,
 * an uninterrupted run for resuming, and real Fashion-MNIST images for learning. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"

#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GOLDEN "tests/data/train.safetensors"

static mcnn_safetensors *gold;

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "/tmp/mcnn_test_train_%d_%s", (int)getpid(), name);
    return p;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* ---- PyTorch goldens: two optimizer steps ------------------------------------------------- */

/* A classifier with the generator's configuration and weights ("<m>.w.<name>"). */
static mcnn_classifier *golden_model(const char *m)
{
    mcnn_classifier_config cfg = {.num_classes = 3, .in_channels = 1};
    if (strcmp(m, "vit") == 0)
        cfg.arch = "vit-small", cfg.image_size = 8, cfg.width = 8, cfg.depth = 1, cfg.patch = 4,
        cfg.heads = 2;
    else
        cfg.arch = "resnet-small", cfg.image_size = 12, cfg.width = 4, cfg.depth = 1;
    mcnn_classifier *c = NULL;
    TEST_OK(mcnn_classifier_create(&c, &cfg, 1));
    if (!c) return NULL;
    mcnn_params *tables[2] = {mcnn_classifier_params(c), mcnn_classifier_buffers(c)};
    for (int t = 0; t < 2; t++)
        for (int i = 0; tables[t] && i < tables[t]->count; i++) {
            const mcnn_param *row = &tables[t]->table[i];
            char name[160];
            snprintf(name, sizeof name, "%s.w.%s", m, row->name);
            TEST_OK(mcnn_safetensors_load_f32(gold, name, tables[t]->data + row->offset,
                                              row->ndim, row->shape));
        }
    return c;
}

static mcnn_train_config golden_config(mcnn_loss_kind loss, int probe)
{
    mcnn_train_config c = mcnn_train_config_default();
    c.batch = 3, c.accum = 2, c.epochs = 2;           /* 12 samples: 2 steps per epoch   */
    c.loss = loss, c.label_smoothing = 0.1f;
    c.optim = MCNN_OPTIM_ADAMW, c.lr = 1e-2, c.weight_decay = 0.05;
    c.schedule = MCNN_LR_COSINE, c.warmup_epochs = 0.5, c.warmup_start = 0.5, c.min_lr = 0;
    c.clip_norm = 0.5f;
    c.freeze_backbone = probe;
    return c;
}

/* pos_weight from a data set's label counts, against the generator's negatives / positives. */
static void check_pos_weight(mcnn_trainer *t, const float *targets, int N, int K)
{
    mcnn_dataset ds = {0};
    ds.count = N, ds.num_classes = K, ds.multi_label = 1;
    ds.targets = malloc((size_t)N * K);
    for (int i = 0; i < N * K; i++) ds.targets[i] = targets[i] != 0;
    float pw[8];
    mcnn_dataset_pos_weight(&ds, pw);
    float *want = test_golden(gold, "bce.pos_weight", NULL);
    if (want) test_close_array("pos_weight", pw, want, (size_t)K, 1e-6, 0);
    TEST_OK(mcnn_trainer_set_pos_weight(t, pw));
    free(want);
    free(ds.targets);
}

static void golden_steps(const char *m, const char *kind)
{
    const mcnn_loss_kind loss = strcmp(kind, "bce") == 0 ? MCNN_LOSS_BCE : MCNN_LOSS_CE;
    const int probe = strcmp(kind, "probe") == 0, N = 12, K = 3;
    mcnn_classifier *c = golden_model(m);
    if (!c) return;
    const int S = mcnn_classifier_image_size(c), img = S * S;
    mcnn_train_config cfg = golden_config(loss, probe);
    mcnn_trainer *t = NULL;
    TEST_OK(mcnn_trainer_create(&t, c, &cfg, N));
    char name[200];
    snprintf(name, sizeof name, "%s.images", m);
    float *images = test_golden(gold, name, NULL);
    float *targets = test_golden(gold, "targets", NULL);
    int32_t *labels = test_golden_i32(gold, "labels", NULL);
    if (!t || !images || !targets || !labels) goto done;
    if (loss == MCNN_LOSS_BCE) check_pos_weight(t, targets, N, K);

    float losses[4], norms[2], lrs[2];
    for (int i = 0; i < 4; i++) {
        int stepped;
        const int at = i * cfg.batch;
        TEST_OK(mcnn_trainer_step(t, images + (size_t)at * img, labels + at, targets + at * K,
                                  cfg.batch, &losses[i], &stepped));
        TEST_ASSERT(stepped == (i % 2 == 1), "micro-batch %d: stepped %d", i, stepped);
        if (stepped)
            norms[i / 2] = mcnn_trainer_last_grad_norm(t), lrs[i / 2] = (float)mcnn_trainer_last_lr(t);
    }
    TEST_ASSERT(mcnn_trainer_step_count(t) == 2, "%lld steps", (long long)mcnn_trainer_step_count(t));
    float *want;
    snprintf(name, sizeof name, "%s.%s.loss", m, kind);
    if ((want = test_golden(gold, name, NULL))) test_close_array(name, losses, want, 4, 1e-4, 1e-6);
    free(want);
    snprintf(name, sizeof name, "%s.%s.norm", m, kind);
    if ((want = test_golden(gold, name, NULL))) test_close_array(name, norms, want, 2, 1e-4, 1e-7);
    free(want);
    snprintf(name, sizeof name, "%s.%s.lr", m, kind);
    if ((want = test_golden(gold, name, NULL))) test_close_array(name, lrs, want, 2, 1e-6, 0);
    free(want);

    /* every parameter (and running statistic) after the two steps, and the clipped gradients */
    mcnn_params *tables[2] = {mcnn_classifier_params(c), mcnn_classifier_buffers(c)};
    for (int tb = 0; tb < 2; tb++)
        for (int i = 0; tables[tb] && i < tables[tb]->count; i++) {
            const mcnn_param *row = &tables[tb]->table[i];
            snprintf(name, sizeof name, "%s.%s.p.%s", m, kind, row->name);
            if ((want = test_golden(gold, name, NULL))) {
                /* The key bias (in_proj_bias[C:2C]) has a gradient of exactly zero in exact
                 * arithmetic (softmax ignores a constant added to every score of a row), so
                 * its float gradient is rounding noise that Adam scales up to lr-sized steps,
                 * in PyTorch as here: those elements are not comparable and are skipped. */
                if (strstr(row->name, "in_proj_bias"))
                    for (size_t k = row->numel / 3; k < 2 * row->numel / 3; k++)
                        want[k] = tables[tb]->data[row->offset + k];
                test_close_rel(name, tables[tb]->data + row->offset, want, row->numel, 1e-3);
            }
            free(want);
            snprintf(name, sizeof name, "%s.%s.g.%s", m, kind, row->name);
            want = tb == 0 && mcnn_safetensors_find(gold, name) ? test_golden(gold, name, NULL)
                                                                : NULL;
            if (want) test_close_rel(name, tables[tb]->grad + row->offset, want, row->numel, 1e-3);
            free(want);
            if (probe && i < tables[tb]->count - 2) { /* the backbone: untouched, bit for bit */
                snprintf(name, sizeof name, "%s.w.%s", m, row->name);
                float *init = test_golden(gold, name, NULL);
                TEST_ASSERT(init && !memcmp(init, tables[tb]->data + row->offset,
                                            row->numel * sizeof(float)),
                            "%s changed in a linear probe", row->name);
                free(init);
            }
        }
done:
    free(images);
    free(targets);
    free(labels);
    mcnn_trainer_free(t);
    mcnn_classifier_free(c);
}

static void test_vit_ce_step(void) { golden_steps("vit", "ce"); }
static void test_vit_bce_step(void) { golden_steps("vit", "bce"); }
static void test_vit_probe_step(void) { golden_steps("vit", "probe"); }
static void test_resnet_ce_step(void) { golden_steps("resnet", "ce"); }
static void test_resnet_bce_step(void) { golden_steps("resnet", "bce"); }
static void test_resnet_probe_step(void) { golden_steps("resnet", "probe"); }

/* ---- metrics ------------------------------------------------------------------------------- */

static void test_metrics_goldens(void)
{
    const int N = 40, K = 5;
    float *scores = test_golden(gold, "met.scores", NULL), *ap = test_golden(gold, "met.ap", NULL);
    int32_t *t32 = test_golden_i32(gold, "met.targets", NULL);
    int32_t *labels = test_golden_i32(gold, "met.labels", NULL);
    int32_t *pred_want = test_golden_i32(gold, "met.pred", NULL);
    int32_t *cm_want = test_golden_i32(gold, "met.cm", NULL);
    float *v[6];
    const char *names[6] = {"met.top1", "met.top3", "met.mean_class", "met.kappa", "met.f1_micro",
                            "met.f1_macro"};
    for (int i = 0; i < 6; i++) v[i] = test_golden(gold, names[i], NULL);
    if (!scores || !ap || !t32 || !labels || !pred_want || !cm_want) goto done;
    unsigned char targets[40 * 5];
    for (int i = 0; i < N * K; i++) targets[i] = (unsigned char)t32[i];
    double per[5];
    const double map = mcnn_mean_average_precision(scores, targets, N, K, per);
    double want_map = 0;
    for (int k = 0; k < K; k++) {
        TEST_CLOSE("AP", per[k], ap[k], 1e-6, 1e-9);
        want_map += ap[k] / K;
    }
    TEST_CLOSE("mAP", map, want_map, 1e-6, 1e-9);
    TEST_CLOSE("top-1", mcnn_topk_accuracy(scores, labels, N, K, 1), v[0][0], 1e-6, 0);
    TEST_CLOSE("top-3", mcnn_topk_accuracy(scores, labels, N, K, 3), v[1][0], 1e-6, 0);
    int32_t pred[40];
    int64_t cm[25];
    mcnn_argmax_rows(pred, scores, N, K);
    for (int n = 0; n < N; n++) TEST_ASSERT(pred[n] == pred_want[n], "argmax row %d", n);
    mcnn_confusion_matrix(cm, labels, pred, N, K);
    for (int i = 0; i < K * K; i++) TEST_ASSERT(cm[i] == cm_want[i], "confusion [%d]", i);
    TEST_CLOSE("mean per-class", mcnn_mean_class_accuracy(cm, K), v[2][0], 1e-6, 0);
    TEST_CLOSE("kappa", mcnn_cohen_kappa(cm, K), v[3][0], 1e-6, 1e-9);
    double micro, macro;
    float probs[40 * 5];
    for (int i = 0; i < N * K; i++) probs[i] = 1.0f / (1.0f + expf(-scores[i]));
    mcnn_f1_scores(&micro, &macro, probs, targets, N, K, 0.5f);
    TEST_CLOSE("F1 micro", micro, v[4][0], 1e-6, 0);
    TEST_CLOSE("F1 macro", macro, v[5][0], 1e-6, 0);
done:
    free(scores), free(ap), free(t32), free(labels), free(pred_want), free(cm_want);
    for (int i = 0; i < 6; i++) free(v[i]);
}

/* Examples whose values are published: sklearn's documentation and Wikipedia. */
static void test_metrics_published(void)
{
    /* sklearn average_precision_score docs: y_true [0,0,1,1], scores [.1,.4,.35,.8] -> 0.83 */
    const float s[4] = {0.1f, 0.4f, 0.35f, 0.8f};
    const unsigned char y[4] = {0, 0, 1, 1};
    TEST_CLOSE("sklearn AP example", mcnn_average_precision(s, y, 4, 1), 0.8333333333, 1e-9, 0);
    /* Wikipedia, Cohen's kappa: 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15 */
    const int64_t cm[4] = {20, 5, 10, 15};
    TEST_CLOSE("Wikipedia kappa example", mcnn_cohen_kappa(cm, 2), 0.4, 1e-12, 0);
    /* sklearn f1_score docs: y_true [0,1,2,0,1,2], y_pred [0,2,1,0,0,1]: macro 0.267, micro
     * 0.333 -- as one-hot multi-label decisions */
    const int yt[6] = {0, 1, 2, 0, 1, 2}, yp[6] = {0, 2, 1, 0, 0, 1};
    float probs[18];
    unsigned char truth[18];
    for (int n = 0; n < 6; n++)
        for (int k = 0; k < 3; k++)
            probs[n * 3 + k] = yp[n] == k ? 0.9f : 0.1f, truth[n * 3 + k] = yt[n] == k;
    double micro, macro;
    mcnn_f1_scores(&micro, &macro, probs, truth, 6, 3, 0.5f);
    TEST_CLOSE("sklearn F1 macro example", macro, 0.26666666667, 1e-9, 0);
    TEST_CLOSE("sklearn F1 micro example", micro, 0.33333333333, 1e-9, 0);
    /* a class without positives: AP is NaN and left out of the mean */
    const unsigned char none[4] = {0, 0, 0, 0};
    TEST_ASSERT(isnan(mcnn_average_precision(s, none, 4, 1)), "AP without positives");
}

/* ---- data ---------------------------------------------------------------------------------- */

static void test_augment_shift_flip(void)
{
    static const int cases[][3] = {{0, 0, 0}, {1, -2, 0}, {-2, 3, 1}, {0, 0, 1}, {4, 0, 0}, {-1, -1, 1}};
    int32_t *in32 = test_golden_i32(gold, "aug.in", NULL);
    if (!in32) return;
    unsigned char in[60], out[60];
    for (int i = 0; i < 60; i++) in[i] = (unsigned char)in32[i];
    for (int c = 0; c < 6; c++) {
        char name[32];
        snprintf(name, sizeof name, "aug.out.%d", c);
        int32_t *want = test_golden_i32(gold, name, NULL);
        if (!want) continue;
        mcnn_augment_shift_flip(out, in, 2, 5, 6, cases[c][0], cases[c][1], cases[c][2]);
        for (int i = 0; i < 60; i++)
            TEST_ASSERT(out[i] == want[i], "case %d pixel %d: %d, want %d", c, i, out[i], want[i]);
        free(want);
    }
    free(in32);
}

static void test_idx_files(void)
{
    int32_t *images = test_golden_i32(gold, "idx.images", NULL);
    int32_t *labels = test_golden_i32(gold, "idx.labels", NULL);
    for (int gz = 0; gz < 2 && images && labels; gz++) {
        mcnn_dataset ds;
        TEST_OK(mcnn_dataset_load_idx(&ds, gz ? "tests/data/train_idx/images.idx.gz"
                                              : "tests/data/train_idx/images.idx",
                                      gz ? "tests/data/train_idx/labels.idx.gz"
                                         : "tests/data/train_idx/labels.idx"));
        TEST_ASSERT(ds.count == 5 && ds.height == 3 && ds.width == 4 && ds.channels == 1,
                    "shape %d x %d x %d", ds.count, ds.height, ds.width);
        TEST_ASSERT(ds.num_classes == 7, "%d classes (1 + the largest label 6)", ds.num_classes);
        for (int i = 0; ds.pixels && i < 60; i++)
            TEST_ASSERT(ds.pixels[i] == images[i], "pixel %d", i);
        for (int i = 0; ds.labels && i < 5; i++) TEST_ASSERT(ds.labels[i] == labels[i], "label %d", i);
        mcnn_dataset_free(&ds);
    }
    /* damaged files: a wrong count, a truncated body, a bad magic, a missing file */
    const char *bad = tmp_path("bad.idx"), *lab = "tests/data/train_idx/labels.idx";
    static const unsigned char truncated[] = {0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 4, 1, 2};
    static const unsigned char magic[] = {0, 1, 8, 3, 0, 0, 0, 0};
    const struct { const unsigned char *b; size_t n; const char *says; } cases[] = {
        {truncated, sizeof truncated, "promises"}, {magic, sizeof magic, "bad magic"}};
    for (size_t c = 0; c < 2; c++) {
        FILE *f = fopen(bad, "wb");
        fwrite(cases[c].b, 1, cases[c].n, f);
        fclose(f);
        mcnn_dataset ds;
        mcnn_status s = mcnn_dataset_load_idx(&ds, bad, lab);
        TEST_ASSERT(s == MCNN_ERR_FORMAT && strstr(mcnn_last_error(), cases[c].says) &&
                        strstr(mcnn_last_error(), bad), "case %zu: %s", c, mcnn_last_error());
    }
    mcnn_dataset ds;
    TEST_ASSERT(mcnn_dataset_load_idx(&ds, "tests/data/train_idx/images.idx", bad) != MCNN_OK,
                "labels file with the wrong header accepted");
    TEST_ASSERT(mcnn_dataset_load_idx(&ds, "/nonexistent/x.idx", lab) == MCNN_ERR_IO &&
                    strstr(mcnn_last_error(), "/nonexistent/x.idx"), "%s", mcnn_last_error());
    unlink(bad);
    free(images);
    free(labels);
}

static int have_fashion(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", MCNN_FASHION_MNIST_DIR);
    struct stat sb;
    if (stat(p, &sb) == 0) return 1;
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", MCNN_FASHION_MNIST_DIR);
    return stat(p, &sb) == 0;
}

/* The published facts: 60000 + 10000 images of 28 x 28, the first of each set an ankle boot. */
static void test_fashion_mnist(void)
{
    if (!have_fashion()) {
        TEST_SKIP("%s is absent (Debian package dataset-fashion-mnist)", MCNN_FASHION_MNIST_DIR);
        return;
    }
    mcnn_dataset tr, te;
    TEST_OK(mcnn_dataset_load_fashion_mnist(&tr, MCNN_FASHION_MNIST_DIR, 1));
    TEST_OK(mcnn_dataset_load_fashion_mnist(&te, MCNN_FASHION_MNIST_DIR, 0));
    TEST_ASSERT(tr.count == 60000 && te.count == 10000 && tr.height == 28 && tr.width == 28,
                "%d and %d images of %d x %d", tr.count, te.count, tr.height, tr.width);
    TEST_ASSERT(tr.num_classes == 10 && !strcmp(tr.class_names[9], "Ankle boot") &&
                    !strcmp(tr.class_names[0], "T-shirt/top"), "class names");
    TEST_ASSERT(tr.labels && tr.labels[0] == 9 && te.labels && te.labels[0] == 9,
                "first labels %d %d", tr.labels ? tr.labels[0] : -1, te.labels ? te.labels[0] : -1);
    int64_t counts[10];
    mcnn_dataset_class_counts(&tr, counts);
    for (int k = 0; k < 10; k++) TEST_ASSERT(counts[k] == 6000, "class %d: %lld", k, (long long)counts[k]);
    mcnn_dataset_free(&tr);
    mcnn_dataset_free(&te);
}

/* A gray-ish RGB image whose pixel (x, y, c) is v0 + 10 y + 3 x + c. */
static void write_image(const char *path, int w, int h, int v0)
{
    mcnn_image img = {w, h, 3, malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) img.pixels[(y * w + x) * 3 + c] = (unsigned char)(v0 + 10 * y + 3 * x + c);
    TEST_OK(mcnn_ppm_write(path, &img));
    free(img.pixels);
}

static void test_folder_dataset(void)
{
    char root[256], p[512];
    snprintf(root, sizeof root, "%s", tmp_path("folder"));
    mkdir(root, 0777);
    const char *classes[] = {"zebra", "ant", "Moth"}; /* sorted by bytes: Moth, ant, zebra */
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/%s", root, classes[k]);
        mkdir(p, 0777);
        for (int i = 0; i < k + 1; i++) {
            snprintf(p, sizeof p, "%s/%s/img%d.ppm", root, classes[k], 2 - i);
            write_image(p, 4, 4, 20 * k + i);
        }
        snprintf(p, sizeof p, "%s/%s/notes.txt", root, classes[k]); /* not an image: skipped */
        write_text(p, "x");
    }
    mcnn_dataset ds;
    TEST_OK(mcnn_dataset_load_folder(&ds, root));
    TEST_ASSERT(ds.count == 6 && ds.num_classes == 3, "%d images, %d classes", ds.count, ds.num_classes);
    if (ds.count == 6 && ds.num_classes == 3) {
        TEST_ASSERT(!strcmp(ds.class_names[0], "Moth") && !strcmp(ds.class_names[1], "ant") &&
                        !strcmp(ds.class_names[2], "zebra"), "class order");
        static const int want_labels[6] = {0, 0, 0, 1, 1, 2};
        for (int i = 0; i < 6; i++) TEST_ASSERT(ds.labels[i] == want_labels[i], "label %d", i);
        TEST_ASSERT(strstr(ds.paths[0], "Moth/img0.ppm") && strstr(ds.paths[2], "Moth/img2.ppm"),
                    "files sorted: %s", ds.paths[0]);
        /* a batch without augmentation: ToTensor + Normalize, channel planes */
        mcnn_transform tf = mcnn_transform_default(4, 3);
        tf.preprocess.resize = 4;
        float images[2 * 3 * 16], want;
        int32_t labels[2];
        float targets[2 * 3];
        const int idx[2] = {3, 0};
        TEST_OK(mcnn_dataset_batch(&ds, idx, 2, &tf, 0, NULL, images, labels, targets));
        TEST_ASSERT(labels[0] == 1 && labels[1] == 0, "labels %d %d", labels[0], labels[1]);
        TEST_ASSERT(targets[0] == 0 && targets[1] == 1 && targets[3] == 1, "one-hot targets");
        /* sample 3 is ant/img1.ppm: written with v0 = 21 */
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 4; x++) {
                    want = ((float)(21 + 10 * y + 3 * x + c) / 255.0f - tf.preprocess.mean[c]) /
                           tf.preprocess.std[c];
                    TEST_CLOSE("pixel", images[(c * 4 + y) * 4 + x], want, 0, 1e-6);
                }
    }
    mcnn_dataset_free(&ds);
    snprintf(p, sizeof p, "%s/empty", root); /* a class folder without images */
    mkdir(p, 0777);
    TEST_ASSERT(mcnn_dataset_load_folder(&ds, root) == MCNN_ERR_FORMAT &&
                    strstr(mcnn_last_error(), "empty") && strstr(mcnn_last_error(), "without images"),
                "%s", mcnn_last_error());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    TEST_ASSERT(system(cmd) == 0, "cleanup");
}

static int warnings;
static void count_warning(void *ctx, const char *msg)
{
    (void)ctx;
    warnings++;
    TEST_ASSERT(strstr(msg, "broken.ppm") != NULL, "warning names the file: %s", msg);
}

static void test_split_files(void)
{
    char root[256], p[512], split[600], labels[600];
    snprintf(root, sizeof root, "%s", tmp_path("split"));
    mkdir(root, 0777);
    snprintf(p, sizeof p, "%s/frames", root);
    mkdir(p, 0777);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/frames/f%d.ppm", root, i);
        write_image(p, 6, 5, 30 * i);
    }
    snprintf(p, sizeof p, "%s/frames/broken.ppm", root);
    write_text(p, "P6\n6 5\n255\nshort");
    snprintf(labels, sizeof labels, "%s/labels.txt", root);
    write_text(labels, "indoor\noutdoor\nnight\nday\n\n");
    snprintf(split, sizeof split, "%s/train.txt", root);
    mcnn_dataset ds;

    /* a good multi-label split (comments, blank lines, repeated labels) */
    write_text(split, "# path labels\nframes/f0.ppm 0 3\n\nframes/f1.ppm 1\nframes/f2.ppm 2 2 0\n");
    TEST_OK(mcnn_dataset_load_split(&ds, split, NULL, labels)); /* root: the split's folder */
    TEST_ASSERT(ds.count == 3 && ds.num_classes == 4 && ds.multi_label, "%d samples, %d classes",
                ds.count, ds.num_classes);
    if (ds.count == 3 && ds.targets) {
        static const unsigned char want[12] = {1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0};
        TEST_ASSERT(!memcmp(ds.targets, want, 12), "targets");
        TEST_ASSERT(ds.labels[0] == 0 && ds.labels[1] == 1 && ds.labels[2] == 0, "first labels");
        TEST_ASSERT(ds.lines[0] == 2 && ds.lines[1] == 4 && ds.lines[2] == 5, "line numbers");
        TEST_ASSERT(!strcmp(ds.class_names[3], "day"), "names");
        float pw[4];
        mcnn_dataset_pos_weight(&ds, pw); /* positives 2, 1, 1, 1 of 3 */
        TEST_CLOSE("pos_weight 0", pw[0], 0.5, 1e-7, 0);
        TEST_CLOSE("pos_weight 1", pw[1], 2.0, 1e-7, 0);
    }
    mcnn_dataset_free(&ds);

    /* each problem is named with its file and line */
    const struct { const char *text; mcnn_status s; const char *says; } bad[] = {
        {"frames/f0.ppm 0\nframes/f9.ppm 1\n", MCNN_ERR_NOT_FOUND, "train.txt:2: image 'frames/f9.ppm' not found"},
        {"frames/f0.ppm 0\n\nframes/f1.ppm 4\n", MCNN_ERR_FORMAT, "train.txt:3: label index 4 is out of range"},
        {"frames/f0.ppm -1\n", MCNN_ERR_FORMAT, "train.txt:1: label index -1 is out of range"},
        {"frames/f0.ppm 1 x2\n", MCNN_ERR_FORMAT, "train.txt:1: 'x2' is not a label index"},
        {"frames/f0.ppm 0\nframes/f1.ppm\n", MCNN_ERR_FORMAT, "train.txt:2: 'frames/f1.ppm' has no label"},
        {"\n# nothing\n\n", MCNN_ERR_FORMAT, "train.txt: empty split"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(split, bad[i].text);
        mcnn_status s = mcnn_dataset_load_split(&ds, split, root, labels);
        TEST_ASSERT(s == bad[i].s && strstr(mcnn_last_error(), bad[i].says),
                    "case %zu: %s (%s)", i, mcnn_last_error(), mcnn_strerror(s));
    }
    /* unreadable files */
    TEST_ASSERT(mcnn_dataset_load_split(&ds, "/nonexistent/split.txt", root, labels) == MCNN_ERR_IO &&
                    strstr(mcnn_last_error(), "/nonexistent/split.txt: cannot open"), "%s",
                mcnn_last_error());
    TEST_ASSERT(mcnn_dataset_load_split(&ds, split, root, "/nonexistent/labels.txt") == MCNN_ERR_IO &&
                    strstr(mcnn_last_error(), "/nonexistent/labels.txt"), "%s", mcnn_last_error());
    TEST_ASSERT(mcnn_dataset_load_split(&ds, split, root, root) != MCNN_OK, "a folder as label list");

    /* an undecodable image: the batch fails naming the file's line, or with skip_corrupt the
     * next sample is used and a warning given once */
    write_text(split, "frames/f0.ppm 0\nframes/broken.ppm 1\nframes/f2.ppm 2\n");
    TEST_OK(mcnn_dataset_load_split(&ds, split, root, labels));
    mcnn_transform tf = mcnn_transform_default(4, 3);
    float images[3 * 3 * 16];
    int32_t lab[3];
    const int idx[3] = {0, 1, 2};
    mcnn_status s = mcnn_dataset_batch(&ds, idx, 3, &tf, 0, NULL, images, lab, NULL);
    TEST_ASSERT(s != MCNN_OK && strstr(mcnn_last_error(), "train.txt:2:") &&
                    strstr(mcnn_last_error(), "broken.ppm"), "%s", mcnn_last_error());
    TEST_OK(mcnn_dataset_skip_corrupt(&ds, count_warning, NULL));
    warnings = 0;
    for (int rep = 0; rep < 2; rep++)
        TEST_OK(mcnn_dataset_batch(&ds, idx, 3, &tf, 1, NULL, images, lab, NULL));
    TEST_ASSERT(warnings == 1, "%d warnings (once per bad file)", warnings);
    TEST_ASSERT(lab[1] == 2, "the broken sample is replaced by the next one (label %d)", lab[1]);
    mcnn_dataset_free(&ds);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    TEST_ASSERT(system(cmd) == 0, "cleanup");
}

/* A synthetic in-memory data set: N gray S x S images, K classes, each class a bright square at
 * its own place, plus noise (learnable, and always available). */
static void synthetic(mcnn_dataset *ds, int N, int S, int K, unsigned seed)
{
    memset(ds, 0, sizeof *ds);
    ds->count = N, ds->num_classes = K, ds->channels = 1, ds->height = ds->width = S;
    ds->pixels = malloc((size_t)N * S * S);
    ds->labels = malloc((size_t)N * sizeof(int32_t));
    ds->class_names = calloc((size_t)K, sizeof(char *));
    snprintf(ds->source, sizeof ds->source, "synthetic");
    for (int k = 0; k < K; k++) {
        ds->class_names[k] = malloc(16);
        snprintf(ds->class_names[k], 16, "class %d", k);
    }
    float *noise = malloc((size_t)N * S * S * sizeof(float));
    test_fill_random(noise, (size_t)N * S * S, seed);
    for (int n = 0; n < N; n++) {
        const int k = (int)((n * 7 + seed) % K), cx = (k * 3) % (S - 3), cy = (k * 5) % (S - 3);
        ds->labels[n] = k;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                const int in = x >= cx && x < cx + 3 && y >= cy && y < cy + 3;
                const float v = (in ? 200.0f : 40.0f) + 40.0f * noise[(size_t)n * S * S + y * S + x];
                ds->pixels[(size_t)n * S * S + y * S + x] = (unsigned char)v;
            }
    }
    free(noise);
}

static void test_split_holdout(void)
{
    mcnn_dataset ds, tr, va, tr2, va2;
    synthetic(&ds, 50, 6, 4, 1);
    TEST_OK(mcnn_dataset_split(&tr, &va, &ds, 0.2, 7));
    TEST_OK(mcnn_dataset_split(&tr2, &va2, &ds, 0.2, 8));
    TEST_ASSERT(tr.count == 40 && va.count == 10, "%d + %d", tr.count, va.count);
    /* disjoint, complete, in the source's order: find each sample by its pixels */
    int seen[50] = {0}, same = 1;
    const mcnn_dataset *parts[2] = {&tr, &va};
    for (int p = 0; p < 2; p++) {
        int last = -1;
        for (int i = 0; i < parts[p]->count; i++)
            for (int j = 0; j < 50; j++)
                if (!memcmp(parts[p]->pixels + i * 36, ds.pixels + j * 36, 36)) {
                    seen[j]++;
                    TEST_ASSERT(j > last, "order kept");
                    last = j;
                    break;
                }
    }
    for (int j = 0; j < 50; j++) TEST_ASSERT(seen[j] == 1, "sample %d seen %d times", j, seen[j]);
    for (int i = 0; i < 10 && va2.pixels && va.pixels; i++) same &= !memcmp(va.pixels + i * 36, va2.pixels + i * 36, 36);
    TEST_ASSERT(!same, "another seed, another held-out set");
    mcnn_dataset_free(&tr2), mcnn_dataset_free(&va2);
    TEST_ASSERT(mcnn_dataset_split(&tr2, &va2, &ds, 0.001, 1) == MCNN_ERR_ARG,
                "an empty held-out side refused");
    mcnn_dataset_free(&tr), mcnn_dataset_free(&va), mcnn_dataset_free(&ds);
}

static void test_pos_weight_file(void)
{
    const char *path = tmp_path("pw.txt");
    float pw[3];
    write_text(path, "1.5 2\n0.25\n");
    TEST_OK(mcnn_read_pos_weight(pw, 3, path));
    TEST_ASSERT(pw[0] == 1.5f && pw[1] == 2.0f && pw[2] == 0.25f, "values");
    write_text(path, "1 2\n");
    TEST_ASSERT(mcnn_read_pos_weight(pw, 3, path) == MCNN_ERR_FORMAT &&
                    strstr(mcnn_last_error(), "expected 3 numbers"), "%s", mcnn_last_error());
    write_text(path, "1 2 3 4\n");
    TEST_ASSERT(mcnn_read_pos_weight(pw, 3, path) == MCNN_ERR_FORMAT, "extra numbers accepted");
    write_text(path, "1 -2 3\n");
    TEST_ASSERT(mcnn_read_pos_weight(pw, 3, path) == MCNN_ERR_FORMAT, "negative weight accepted");
    unlink(path);
}

/* ---- the classifier's file ---------------------------------------------------------------- */

static void test_classifier_file(void)
{
    mcnn_classifier *c = NULL, *d = NULL;
    mcnn_classifier_config cfg = {.arch = "vit-small", .num_classes = 3, .image_size = 8,
                                  .in_channels = 1, .width = 8, .depth = 1, .patch = 4};
    TEST_OK(mcnn_classifier_create(&c, &cfg, 3));
    if (!c) return;
    const char *names[3] = {"T-shirt/top", "quote \" and \\", "caf\xc3\xa9"};
    TEST_OK(mcnn_classifier_set_labels(c, names, 3));
    mcnn_preprocess_config pp = *mcnn_classifier_get_preprocess(c);
    pp.mean[0] = 0.25f, pp.std[0] = 0.5f;
    mcnn_classifier_set_preprocess(c, &pp);
    mcnn_classifier_set_multilabel(c, 1);
    const char *path = tmp_path("clf.safetensors");
    TEST_OK(mcnn_classifier_save(c, path));
    TEST_OK(mcnn_classifier_load(&d, path, NULL));
    if (d) {
        for (int k = 0; k < 3; k++)
            TEST_ASSERT(!strcmp(mcnn_classifier_label(d, k), names[k]), "label %d", k);
        const mcnn_preprocess_config *q = mcnn_classifier_get_preprocess(d);
        TEST_ASSERT(q->crop == 8 && q->channels == 1 && q->mean[0] == 0.25f && q->std[0] == 0.5f,
                    "preprocess %d %d %g %g", q->crop, q->channels, q->mean[0], q->std[0]);
        TEST_ASSERT(mcnn_classifier_arch(d) == MCNN_ARCH_VIT && mcnn_classifier_multilabel(d),
                    "arch, multilabel");
        const mcnn_params *a = mcnn_classifier_params(c), *b = mcnn_classifier_params(d);
        TEST_ASSERT(a->total == b->total && !memcmp(a->data, b->data, a->total * sizeof(float)),
                    "weights round trip");
        mcnn_classifier_free(d);
        d = NULL;
    }
    mcnn_safetensors *st;
    TEST_OK(mcnn_safetensors_open(&st, path));
    if (st) {
        const char *v = mcnn_safetensors_meta(st, "arch");
        TEST_ASSERT(v && !strcmp(v, "vit"), "arch metadata");
        v = mcnn_safetensors_meta(st, "labels");
        TEST_ASSERT(v && !strcmp(v, "[\"T-shirt/top\",\"quote \\\" and \\\\\",\"caf\xc3\xa9\"]"),
                    "labels metadata: %s", v ? v : "(none)");
        v = mcnn_safetensors_meta(st, "preprocess");
        TEST_ASSERT(v && strstr(v, "\"size\":8") && strstr(v, "\"channels\":1") &&
                        strstr(v, "\"mean\":[0.25]"), "preprocess metadata: %s", v ? v : "(none)");
        mcnn_safetensors_close(st);
    }
    /* optimizer.* tensors are training state, which the model loaders skip; others are not */
    const float junk[2] = {1, 2};
    mcnn_st_entry extra[1] = {{.name = "optimizer.m.x", .dtype = MCNN_DTYPE_F32, .ndim = 1,
                               .shape = {2}, .data = junk}};
    TEST_OK(mcnn_classifier_save_with(c, path, extra, 1, NULL, 0));
    mcnn_vit *vit = NULL;
    TEST_OK(mcnn_vit_load(&vit, path, NULL));
    mcnn_vit_free(vit);
    extra[0].name = "junk.weight";
    TEST_OK(mcnn_classifier_save_with(c, path, extra, 1, NULL, 0));
    TEST_ASSERT(mcnn_classifier_load(&d, path, NULL) == MCNN_ERR_FORMAT &&
                    strstr(mcnn_last_error(), "junk.weight"), "%s", mcnn_last_error());
    /* a new head of another size: the old names do not apply */
    extra[0].name = "optimizer.v.x";
    TEST_OK(mcnn_classifier_save_with(c, path, extra, 1, NULL, 0));
    mcnn_classifier_load_options lo = {.num_classes = 5};
    TEST_OK(mcnn_classifier_load(&d, path, &lo));
    if (d) TEST_ASSERT(mcnn_classifier_num_classes(d) == 5 && !strcmp(mcnn_classifier_label(d, 4), "4"),
                       "new head");
    mcnn_classifier_free(d);
    mcnn_classifier_free(c);
    unlink(path);
}

/* ---- resuming, NaN, learning --------------------------------------------------------------- */

typedef struct loss_log {
    float loss[64];
    int n, stop_at;
} loss_log;

static int record(void *ctx, const mcnn_train_progress *p)
{
    loss_log *l = ctx;
    if (l->n < 64) l->loss[l->n++] = p->loss;
    return l->stop_at && p->step == l->stop_at;
}

static mcnn_classifier *small_model(const char *arch, int S, int K)
{
    mcnn_classifier_config cfg = {.arch = arch, .num_classes = K, .image_size = S,
                                  .in_channels = 1, .width = 8, .depth = 1, .patch = 4, .heads = 2};
    mcnn_classifier *c = NULL;
    TEST_OK(mcnn_classifier_create(&c, &cfg, 11));
    return c;
}

/* Train to the end; or stop at step stop_at, checkpoint, rebuild everything from the file and
 * finish.  Returns the final classifier; losses are logged. */
static mcnn_classifier *train_run(const char *arch, const mcnn_dataset *ds, const mcnn_train_config *cfg,
                                  int stop_at, loss_log *log, const char *ckpt)
{
    mcnn_classifier *c = small_model(arch, ds->height, ds->num_classes);
    mcnn_trainer *t = NULL;
    mcnn_transform tf = mcnn_transform_default(ds->height, 1);
    tf.pad = 2;
    if (!c) return NULL;
    TEST_OK(mcnn_trainer_create(&t, c, cfg, ds->count));
    if (!t) return c;
    log->stop_at = stop_at;
    while (mcnn_trainer_epoch(t) < cfg->epochs) {
        int stopped = 0;
        TEST_OK(mcnn_trainer_run_epoch(t, ds, &tf, record, log, &stopped));
        if (!stopped) continue;
        TEST_OK(mcnn_trainer_save(t, ckpt, NULL, 0));
        mcnn_trainer_free(t);
        mcnn_classifier_free(c);
        t = NULL, c = NULL;
        mcnn_train_config saved;
        TEST_OK(mcnn_train_config_load(&saved, ckpt));
        TEST_ASSERT(!memcmp(&saved, cfg, sizeof saved), "the config round trip");
        TEST_OK(mcnn_classifier_load(&c, ckpt, NULL));
        if (!c) return NULL;
        TEST_OK(mcnn_trainer_create(&t, c, &saved, ds->count));
        if (!t) return c;
        TEST_OK(mcnn_trainer_resume(t, ckpt));
        TEST_ASSERT(mcnn_trainer_step_count(t) == stop_at, "resumed at step %lld",
                    (long long)mcnn_trainer_step_count(t));
        log->stop_at = 0;
    }
    mcnn_trainer_free(t);
    return c;
}

static void resume_case(const char *arch, mcnn_loss_kind loss)
{
    mcnn_dataset ds;
    synthetic(&ds, 40, 8, 3, 2);
    mcnn_train_config cfg = mcnn_train_config_default();
    cfg.batch = 4, cfg.accum = 2, cfg.epochs = 3, cfg.lr = 3e-3, cfg.seed = 5, cfg.loss = loss;
    cfg.warmup_epochs = 0.5;                               /* 5 steps per epoch, 15 in all */
    const char *ckpt = tmp_path("resume.safetensors");
    loss_log a = {0}, b = {0};
    mcnn_classifier *ca = train_run(arch, &ds, &cfg, 0, &a, ckpt);
    mcnn_classifier *cb = train_run(arch, &ds, &cfg, 7, &b, ckpt); /* mid-epoch 2 */
    TEST_ASSERT(a.n == 15 && b.n == 15, "%d and %d steps", a.n, b.n);
    TEST_ASSERT(!memcmp(a.loss, b.loss, sizeof a.loss), "losses differ after resuming");
    for (int i = 0; i < a.n; i++) TEST_CLOSE("loss", b.loss[i], a.loss[i], 0, 0);
    if (ca && cb) {
        mcnn_params *tables[2][2] = {{mcnn_classifier_params(ca), mcnn_classifier_buffers(ca)},
                                     {mcnn_classifier_params(cb), mcnn_classifier_buffers(cb)}};
        for (int t = 0; t < 2; t++)
            if (tables[0][t])
                TEST_ASSERT(!memcmp(tables[0][t]->data, tables[1][t]->data,
                                    tables[0][t]->total * sizeof(float)),
                            "%s differ bit for bit after resuming", t ? "buffers" : "weights");
    }
    mcnn_classifier_free(ca);
    mcnn_classifier_free(cb);
    mcnn_dataset_free(&ds);
    unlink(ckpt);
}

static void test_resume_resnet(void) { resume_case("resnet-small", MCNN_LOSS_CE); }
static void test_resume_vit_bce(void) { resume_case("vit-small", MCNN_LOSS_BCE); }

static void test_nan_loss(void)
{
    mcnn_classifier *c = small_model("vit-small", 8, 3);
    mcnn_train_config cfg = mcnn_train_config_default();
    cfg.batch = 2;
    mcnn_trainer *t = NULL;
    if (c) TEST_OK(mcnn_trainer_create(&t, c, &cfg, 4));
    if (!t) {
        mcnn_classifier_free(c);
        return;
    }
    float images[2 * 64], loss;
    int32_t labels[2] = {0, 1};
    int stepped;
    test_fill_random(images, 128, 3);
    TEST_OK(mcnn_trainer_step(t, images, labels, NULL, 2, &loss, &stepped));
    mcnn_params *p = mcnn_classifier_params(c);
    float *before = malloc(p->total * sizeof(float));
    memcpy(before, p->data, p->total * sizeof(float));
    images[5] = NAN;
    mcnn_status s = mcnn_trainer_step(t, images, labels, NULL, 2, &loss, &stepped);
    TEST_ASSERT(s != MCNN_OK && isnan(loss) && strstr(mcnn_last_error(), "NaN") &&
                    strstr(mcnn_last_error(), "step 2"), "%s", mcnn_last_error());
    TEST_ASSERT(!stepped && !memcmp(before, p->data, p->total * sizeof(float)),
                "the weights must not change on a NaN loss");
    images[5] = INFINITY;
    s = mcnn_trainer_step(t, images, labels, NULL, 2, &loss, &stepped);
    TEST_ASSERT(s != MCNN_OK && !memcmp(before, p->data, p->total * sizeof(float)),
                "an infinite input: %s", mcnn_last_error());
    free(before);
    mcnn_trainer_free(t);
    mcnn_classifier_free(c);
}

/* 500 real images, a tiny model, a few epochs: the loss falls and the accuracy rises. */
static void learns_case(const char *arch)
{
    if (!have_fashion()) {
        TEST_SKIP("%s is absent (Debian package dataset-fashion-mnist)", MCNN_FASHION_MNIST_DIR);
        return;
    }
    mcnn_dataset full, tr, te, te_full;
    TEST_OK(mcnn_dataset_load_fashion_mnist(&full, MCNN_FASHION_MNIST_DIR, 1));
    TEST_OK(mcnn_dataset_load_fashion_mnist(&te_full, MCNN_FASHION_MNIST_DIR, 0));
    int idx[500];
    for (int i = 0; i < 500; i++) idx[i] = i;
    TEST_OK(mcnn_dataset_subset(&tr, &full, idx, 500));
    TEST_OK(mcnn_dataset_subset(&te, &te_full, idx, 500));
    mcnn_dataset_free(&full);
    mcnn_dataset_free(&te_full);
    mcnn_classifier_config mc = {.arch = arch, .num_classes = 10, .image_size = 28,
                                 .in_channels = 1, .width = strcmp(arch, "vit-small") ? 8 : 32,
                                 .depth = 1, .patch = 7, .heads = 2};
    mcnn_classifier *c = NULL;
    TEST_OK(mcnn_classifier_create(&c, &mc, 1));
    mcnn_train_config cfg = mcnn_train_config_default();
    cfg.batch = 16, cfg.epochs = 6, cfg.lr = 5e-3, cfg.warmup_epochs = 0.5, cfg.label_smoothing = 0;
    mcnn_trainer *t = NULL;
    if (c) TEST_OK(mcnn_trainer_create(&t, c, &cfg, tr.count));
    mcnn_transform tf = mcnn_transform_default(28, 1);
    tf.pad = 2;
    mcnn_eval_result before, after;
    loss_log log = {0};
    if (t) {
        TEST_OK(mcnn_evaluate(c, &te, &tf, 100, 0.5f, &before));
        while (mcnn_trainer_epoch(t) < cfg.epochs)
            TEST_OK(mcnn_trainer_run_epoch(t, &tr, &tf, record, &log, NULL));
        TEST_OK(mcnn_evaluate(c, &te, &tf, 100, 0.5f, &after));
        double first = 0, last = 0;
        for (int i = 0; i < 10; i++) first += log.loss[i] / 10, last += log.loss[log.n - 10 + i] / 10;
        fprintf(stderr, "  %s: train loss %.3f -> %.3f, held-out loss %.3f -> %.3f, top-1 %.1f%% "
                "-> %.1f%%\n", arch, first, last, before.loss, after.loss, 100 * before.top1,
                100 * after.top1);
        TEST_ASSERT(last < 0.85 * first, "training loss %.3f -> %.3f", first, last);
        TEST_ASSERT(after.loss < 0.7 * before.loss, "held-out loss %.3f -> %.3f", before.loss,
                    after.loss);
        TEST_ASSERT(after.top1 > 0.5 && after.top1 > before.top1 + 0.3, "top-1 %.3f -> %.3f",
                    before.top1, after.top1);
        TEST_ASSERT(after.confusion && after.top5 >= after.top1, "confusion, top-5");
        mcnn_eval_result_free(&before);
        mcnn_eval_result_free(&after);
    }
    mcnn_trainer_free(t);
    mcnn_classifier_free(c);
    mcnn_dataset_free(&tr);
    mcnn_dataset_free(&te);
}

static void test_learns_resnet(void) { learns_case("resnet-small"); }
static void test_learns_vit(void) { learns_case("vit-small"); }

/* weights/samples: each PNG is the Fashion-MNIST test image its name gives (index and class). */
static const char *const sample_files[10] = {
    "0000-ankle-boot.png", "0001-pullover.png", "0002-trouser.png", "0004-shirt.png",
    "0006-coat.png", "0008-sandal.png", "0009-sneaker.png", "0013-dress.png", "0018-bag.png",
    "0019-t-shirt-top.png"};
static const int sample_classes[10] = {9, 2, 1, 6, 4, 5, 7, 3, 8, 0};

static void test_demo_samples(void)
{
    if (!have_fashion()) {
        TEST_SKIP("%s is absent (Debian package dataset-fashion-mnist)", MCNN_FASHION_MNIST_DIR);
        return;
    }
    mcnn_dataset te;
    TEST_OK(mcnn_dataset_load_fashion_mnist(&te, MCNN_FASHION_MNIST_DIR, 0));
    for (int i = 0; te.pixels && i < 10; i++) {
        char path[256];
        snprintf(path, sizeof path, "weights/samples/%s", sample_files[i]);
        const int index = atoi(sample_files[i]);
        mcnn_image img;
        TEST_OK(mcnn_image_load(&img, path));
        TEST_ASSERT(img.width == 28 && img.height == 28 && img.channels == 1 &&
                        !memcmp(img.pixels, te.pixels + (size_t)index * 784, 784),
                    "%s is not test image %d", path, index);
        TEST_ASSERT(te.labels[index] == sample_classes[i], "%s: class %d", path, te.labels[index]);
        mcnn_image_free(&img);
    }
    mcnn_dataset_free(&te);
}

/* The committed demo checkpoints classify the samples (truth from the data set's labels) and
 * the first 2000 test images as docs/demo.md says they do, within a point. */
static void demo_checkpoint(const char *path, double min_accuracy)
{
    if (access(path, R_OK) != 0) {
        TEST_SKIP("%s is absent", path);
        return;
    }
    mcnn_classifier *c = NULL;
    TEST_OK(mcnn_classifier_load(&c, path, NULL));
    if (!c) return;
    const mcnn_preprocess_config *pp = mcnn_classifier_get_preprocess(c);
    TEST_ASSERT(mcnn_classifier_num_classes(c) == 10 && pp->crop == 28 && pp->channels == 1 &&
                    !strcmp(mcnn_classifier_label(c, 9), "Ankle boot"),
                "a Fashion-MNIST classifier with its labels");
    float images[10 * 784], logits[10 * 10];
    int32_t truth[10], pred[10];
    for (int i = 0; i < 10; i++) {
        char p[256];
        mcnn_image img;
        snprintf(p, sizeof p, "weights/samples/%s", sample_files[i]);
        TEST_OK(mcnn_image_load(&img, p));
        TEST_OK(mcnn_preprocess(images + i * 784, &img, pp));
        mcnn_image_free(&img);
        truth[i] = sample_classes[i];
    }
    TEST_OK(mcnn_classifier_forward(c, logits, images, 10, 0));
    mcnn_argmax_rows(pred, logits, 10, 10);
    int right = 0;
    for (int i = 0; i < 10; i++) right += pred[i] == truth[i];
    TEST_ASSERT(right >= 8, "%s: %d of the 10 samples right", path, right);
    if (have_fashion()) {
        mcnn_dataset te, sub;
        int idx[2000];
        for (int i = 0; i < 2000; i++) idx[i] = i;
        TEST_OK(mcnn_dataset_load_fashion_mnist(&te, MCNN_FASHION_MNIST_DIR, 0));
        TEST_OK(mcnn_dataset_subset(&sub, &te, idx, 2000));
        mcnn_transform tf = mcnn_transform_default(28, 1);
        tf.preprocess = *pp;
        mcnn_eval_result e;
        TEST_OK(mcnn_evaluate(c, &sub, &tf, 200, 0.5f, &e));
        fprintf(stderr, "  %s: %d/10 samples, %.2f%% of the first 2000 test images\n", path,
                right, 100 * e.top1);
        TEST_ASSERT(e.top1 >= min_accuracy, "%s: top-1 %.4f < %.4f", path, e.top1, min_accuracy);
        mcnn_eval_result_free(&e);
        mcnn_dataset_free(&te);
        mcnn_dataset_free(&sub);
    }
    mcnn_classifier_free(c);
}

static void test_demo_resnet(void) { demo_checkpoint("weights/demo-fashion-resnet.safetensors", 0.91); }
static void test_demo_vit(void) { demo_checkpoint("weights/demo-fashion-vit.safetensors", 0.87); }

/* The app: a run stopped after 5 steps and resumed ends with the same model file, byte for
 * byte, and the same log as an uninterrupted run; eval reads the model back. */
static void test_app_resume(void)
{
    const char *build = getenv("MCNN_BUILD");
    char app[512], cmd[4096];
    snprintf(app, sizeof app, "%s/mcnn-train", build && *build ? build : "build");
    if (access(app, X_OK) != 0) {
        TEST_SKIP("%s is not built (make %s)", app, app);
        return;
    }
    if (!have_fashion()) {
        TEST_SKIP("%s is absent (Debian package dataset-fashion-mnist)", MCNN_FASHION_MNIST_DIR);
        return;
    }
    const char *a = tmp_path("app_a"), *b = tmp_path("app_b");
    const char *common = "--data fashion-mnist:train --val fashion-mnist:test --limit 240 "
                         "--val-limit 100 --arch vit-small --width 16 --depth 1 --patch 7 "
                         "--heads 2 --epochs 2 --batch 20 --accum 2 --threads 1 -q";
    snprintf(cmd, sizeof cmd, "'%s' %s --out %s >/dev/null 2>&1", app, common, a);
    TEST_ASSERT(system(cmd) == 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "'%s' %s --out %s --stop-after 5 >/dev/null 2>&1", app, common, b);
    int rc = system(cmd);
    TEST_ASSERT(WIFEXITED(rc) && WEXITSTATUS(rc) == 75, "stopped run: exit %d", rc);
    snprintf(cmd, sizeof cmd, "'%s' --resume --out %s -q >/dev/null 2>&1", app, b);
    TEST_ASSERT(system(cmd) == 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "cmp -s %s/model.safetensors %s/model.safetensors", a, b);
    TEST_ASSERT(system(cmd) == 0, "resumed model differs from the uninterrupted one");
    snprintf(cmd, sizeof cmd, "cut -d, -f1-6 %s/log.csv > %s.csv && cut -d, -f1-6 %s/log.csv | "
             "cmp -s - %s.csv", a, a, b, a);
    TEST_ASSERT(system(cmd) == 0, "resumed log differs from the uninterrupted one");
    snprintf(cmd, sizeof cmd, "'%s' eval --model %s/model.safetensors --data fashion-mnist:test "
             "--val-limit 100 > %s.eval 2>&1 && grep -q 'top-1' %s.eval", app, a, a, a);
    TEST_ASSERT(system(cmd) == 0, "eval of the trained model");
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s.csv %s.eval", a, b, a, a);
    TEST_ASSERT(system(cmd) == 0, "cleanup");
}

int main(void)
{
    if (mcnn_safetensors_open(&gold, GOLDEN) != MCNN_OK) {
        fprintf(stderr, "%s\n", mcnn_last_error());
        return 1;
    }
    TEST_RUN(test_vit_ce_step);
    TEST_RUN(test_vit_bce_step);
    TEST_RUN(test_vit_probe_step);
    TEST_RUN(test_resnet_ce_step);
    TEST_RUN(test_resnet_bce_step);
    TEST_RUN(test_resnet_probe_step);
    TEST_RUN(test_metrics_goldens);
    TEST_RUN(test_metrics_published);
    TEST_RUN(test_augment_shift_flip);
    TEST_RUN(test_idx_files);
    TEST_RUN(test_fashion_mnist);
    TEST_RUN(test_folder_dataset);
    TEST_RUN(test_split_files);
    TEST_RUN(test_split_holdout);
    TEST_RUN(test_pos_weight_file);
    TEST_RUN(test_classifier_file);
    TEST_RUN(test_resume_resnet);
    TEST_RUN(test_resume_vit_bce);
    TEST_RUN(test_nan_loss);
    TEST_RUN(test_learns_resnet);
    TEST_RUN(test_learns_vit);
    TEST_RUN(test_demo_samples);
    TEST_RUN(test_demo_resnet);
    TEST_RUN(test_demo_vit);
    TEST_RUN(test_app_resume);
    mcnn_safetensors_close(gold);
    return test_summary();
}
