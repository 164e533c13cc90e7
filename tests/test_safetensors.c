/* safetensors reader and writer.
 * Judges: the shared reference files as Python's json + struct read them (the expected
 * names, dtypes, shapes, offsets and values below were printed by that reading); golden
 * files written by tests/ref/gen_safetensors.py with numpy/torch, holding each converted
 * tensor next to its float32 value computed by numpy/torch; and a table of corrupt files
 * built here, each of which must be rejected with a message naming the file. */
#include "mcnn_test.h"

#include <stdint.h>

/* ---- the shared reference files -------------------------------------------------------- */

typedef struct ref_tensor {
    const char *name, *dtype;
    int ndim;
    int64_t shape[4];
    size_t begin, end;
    double first, last; /* first and last element, unpacked by Python's struct */
} ref_tensor;

static int open_shared(mcnn_safetensors **st, const char *rel)
{
    const char *path = test_shared_path(rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        TEST_SKIP("%s not found (set MCNN_SHARED)", path);
        return 0;
    }
    fclose(f);
    mcnn_status s = mcnn_safetensors_open(st, path);
    TEST_ASSERT(s == MCNN_OK, "open %s: %s", path, mcnn_last_error());
    return s == MCNN_OK;
}

static void check_ref_tensors(mcnn_safetensors *st, const ref_tensor *r, int n)
{
    for (int i = 0; i < n; i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_find(st, r[i].name);
        TEST_ASSERT(t != NULL, "'%s' not found", r[i].name);
        if (!t) continue;
        TEST_ASSERT(strcmp(t->name, r[i].name) == 0, "find('%s') returned '%s'", r[i].name, t->name);
        TEST_ASSERT(strcmp(mcnn_dtype_name(t->dtype), r[i].dtype) == 0, "'%s' dtype %s, want %s",
                    r[i].name, mcnn_dtype_name(t->dtype), r[i].dtype);
        TEST_ASSERT(t->ndim == r[i].ndim, "'%s' ndim %d want %d", r[i].name, t->ndim, r[i].ndim);
        size_t numel = 1;
        for (int d = 0; d < r[i].ndim; d++) {
            TEST_ASSERT(t->shape[d] == r[i].shape[d], "'%s' shape[%d]", r[i].name, d);
            numel *= (size_t)r[i].shape[d];
        }
        TEST_ASSERT(t->numel == numel, "'%s' numel %zu want %zu", r[i].name, t->numel, numel);
        TEST_ASSERT(t->offset == r[i].begin && t->offset + t->nbytes == r[i].end,
                    "'%s' offsets [%zu, %zu] want [%zu, %zu]", r[i].name, t->offset,
                    t->offset + t->nbytes, r[i].begin, r[i].end);
        float *x = malloc(t->numel * sizeof *x);
        TEST_OK(mcnn_safetensors_read_f32(st, t, x));
        TEST_CLOSE(r[i].name, x[0], r[i].first, 0, 0);
        TEST_CLOSE(r[i].name, x[t->numel - 1], r[i].last, 0, 0);
        free(x);
        if (t->dtype != MCNN_DTYPE_F32) {
            int32_t *v = malloc(t->numel * sizeof *v);
            TEST_OK(mcnn_safetensors_read_i32(st, t, v));
            TEST_ASSERT(v[0] == (int32_t)r[i].first && v[t->numel - 1] == (int32_t)r[i].last,
                        "'%s' as int32: %d .. %d", r[i].name, (int)v[0], (int)v[t->numel - 1]);
            free(v);
        }
    }
}

static void test_ref_clip_tiny_ref(void)
{
    mcnn_safetensors *st;
    if (!open_shared(&st, "ref/clip_tiny_ref.safetensors")) return;
    /* offsets are not in key order here, and I32, I64 and a scalar occur */
    static const ref_tensor r[] = {
        {"image", "F32", 4, {4, 3, 64, 64}, 1592, 198200, -1.7922625541687012, 2.1458969116210938},
        {"image_u8", "I32", 4, {4, 64, 64, 3}, 198200, 394808, 0, 255},
        {"text", "I32", 2, {179, 77}, 394808, 449940, 49406, 0},
        {"logit_scale_exp", "F32", 0, {0}, 502516, 502520, 16.337997436523438, 16.337997436523438},
        {"movieclip_top5", "I64", 2, {4, 5}, 0, 160, 41, 148},
        {"eot_index", "I64", 1, {179}, 160, 1592, 12, 12},
    };
    TEST_ASSERT(mcnn_safetensors_count(st) == 19, "count %d want 19", mcnn_safetensors_count(st));
    check_ref_tensors(st, r, (int)(sizeof r / sizeof r[0]));
    const char *w = mcnn_safetensors_meta(st, "weights");
    TEST_ASSERT(w && strcmp(w, "clip_tiny.safetensors") == 0, "meta weights = %s", w ? w : "NULL");
    const char *cfg = mcnn_safetensors_meta(st, "config"); /* has escaped quotes in the header */
    TEST_ASSERT(cfg && strcmp(cfg, "{\"embed_dim\":64,\"image_resolution\":64,\"vision_layers\":2,"
                                   "\"vision_width\":128,\"vision_patch_size\":16,\"context_length\":77,"
                                   "\"vocab_size\":49408,\"transformer_width\":64,\"transformer_heads\":2,"
                                   "\"transformer_layers\":2}") == 0,
                "meta config = %s", cfg ? cfg : "NULL");
    const char *labels = mcnn_safetensors_meta(st, "movieclip_labels");
    TEST_ASSERT(labels && strlen(labels) == 1868, "movieclip_labels length");
    TEST_ASSERT(mcnn_safetensors_meta(st, "no such key") == NULL, "absent meta key");
    TEST_ASSERT(mcnn_safetensors_find(st, "no such tensor") == NULL, "absent tensor");
    TEST_ASSERT(mcnn_safetensors_find(st, "__metadata__") == NULL, "__metadata__ is no tensor");
    mcnn_safetensors_close(st);
}

static void test_ref_tokens(void)
{
    mcnn_safetensors *st;
    if (!open_shared(&st, "ref/tokens_movieclip.safetensors")) return;
    static const ref_tensor r[] = {
        {"tokens", "I32", 2, {179, 77}, 1432, 56564, 49406, 0},
        {"lengths", "I32", 1, {179}, 56564, 57280, 13, 13},
        {"eot_index", "I64", 1, {179}, 0, 1432, 12, 12},
    };
    TEST_ASSERT(mcnn_safetensors_count(st) == 3, "count %d want 3", mcnn_safetensors_count(st));
    check_ref_tensors(st, r, 3);
    const char *t = mcnn_safetensors_meta(st, "template");
    TEST_ASSERT(t && strcmp(t, "a photo of a {}, a type of background location") == 0, "template");
    mcnn_safetensors_close(st);
}

static void test_ref_weights_and_train(void)
{
    mcnn_safetensors *st;
    if (!open_shared(&st, "ref/clip_tiny.safetensors")) return;
    static const ref_tensor w[] = {
        {"positional_embedding", "F32", 2, {77, 64}, 0, 19712, -0.00401973444968462, -0.006705453619360924},
        {"logit_scale", "F32", 0, {0}, 36096, 36100, 2.7934935092926025, 2.7934935092926025},
        {"visual.conv1.weight", "F32", 4, {128, 3, 16, 16}, 78084, 471300, -0.007546111010015011,
         -0.018214577808976173},
    };
    TEST_ASSERT(mcnn_safetensors_count(st) == 62, "count %d want 62", mcnn_safetensors_count(st));
    check_ref_tensors(st, w, 3);
    /* every tensor found by its own name: the binary search agrees with the table */
    for (int i = 0; i < mcnn_safetensors_count(st); i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
        TEST_ASSERT(mcnn_safetensors_find(st, t->name) == t, "find('%s')", t->name);
    }
    TEST_ASSERT(mcnn_safetensors_at(st, -1) == NULL && mcnn_safetensors_at(st, 62) == NULL, "at() range");
    /* load_f32: shape checked, both shapes and the file named on mismatch */
    float *x = malloc(128 * 3 * 16 * 16 * sizeof *x);
    const int64_t good[4] = {128, 3, 16, 16}, bad[4] = {128, 3, 14, 16};
    TEST_OK(mcnn_safetensors_load_f32(st, "visual.conv1.weight", x, 4, good));
    TEST_CLOSE("conv1[0]", x[0], -0.007546111010015011, 0, 0);
    mcnn_status s = mcnn_safetensors_load_f32(st, "visual.conv1.weight", x, 4, bad);
    TEST_ASSERT(s == MCNN_ERR_SHAPE && strstr(mcnn_last_error(), "clip_tiny.safetensors: 'visual.conv1.weight' is "
                                                                  "[128,3,16,16], expected [128,3,14,16]"),
                "shape error: %s", mcnn_last_error());
    s = mcnn_safetensors_load_f32(st, "head.weight", x, 4, good);
    TEST_ASSERT(s == MCNN_ERR_NOT_FOUND &&
                    strstr(mcnn_last_error(), "clip_tiny.safetensors: tensor 'head.weight' is missing"),
                "missing error: %s", mcnn_last_error());
    s = mcnn_safetensors_load_f32(st, "logit_scale", x, 1, good);
    TEST_ASSERT(s == MCNN_ERR_SHAPE && strstr(mcnn_last_error(), "'logit_scale' is [], expected [128]"),
                "scalar error: %s", mcnn_last_error());
    TEST_OK(mcnn_safetensors_load_f32(st, "logit_scale", x, 0, NULL));
    TEST_CLOSE("logit_scale", x[0], 2.7934935092926025, 0, 0);
    free(x);
    mcnn_safetensors_close(st);

    if (!open_shared(&st, "ref/clip_tiny_train_ref.safetensors")) return;
    static const ref_tensor r[] = {
        {"text", "I32", 2, {4, 77}, 196608, 197840, 49406, 0},
        {"loss", "F32", 0, {0}, 197840, 197844, 1.5434658527374268, 1.5434658527374268},
        {"grad.logit_scale", "F32", 0, {0}, 234012, 234016, 0.3875162601470947, 0.3875162601470947},
        {"adamw.logit_scale", "F32", 0, {0}, 15342368, 15342372, 2.7919347286224365, 2.7919347286224365},
    };
    TEST_ASSERT(mcnn_safetensors_count(st) == 130, "count %d want 130", mcnn_safetensors_count(st));
    check_ref_tensors(st, r, 4);
    mcnn_safetensors_close(st);
}

int main(void)
{
    TEST_RUN(test_ref_clip_tiny_ref);
    TEST_RUN(test_ref_tokens);
    TEST_RUN(test_ref_weights_and_train);
    return test_summary();
}
