/* safetensors reader and writer.
 * Judges: the shared reference files as Python's json + struct read them (the expected
 * names, dtypes, shapes, offsets and values below were printed by that reading); golden
 * files written by tests/ref/gen_safetensors.py with numpy/torch, holding each converted
 * tensor next to its float32 value computed by numpy/torch; and a table of corrupt files
 * built here, each of which must be rejected with a message naming the file. */
#define _XOPEN_SOURCE 700 /* getpid, mkdir, setrlimit: the atomic-write tests are POSIX */
#include "mcnn_test.h"

#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* A scratch file name, unique to this process: "<tmpdir>/mcnn_st_<pid>_<tag>.safetensors". */
static const char *scratch(const char *tag)
{
    static char buf[4][512];
    static int k;
    const char *dir = getenv("TMPDIR");
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/mcnn_st_%ld_%s.safetensors", dir && *dir ? dir : "/tmp",
             (long)getpid(), tag);
    return b;
}

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

/* ---- conversions, judged by numpy/torch (tests/ref/gen_safetensors.py) ------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void test_dtype_conversions(void)
{
    mcnn_safetensors *st;
    TEST_OK(mcnn_safetensors_open(&st, "tests/data/safetensors_dtypes.safetensors"));
    if (!st) return;
    int checked_f32 = 0, checked_i32 = 0;
    for (int i = 0; i < mcnn_safetensors_count(st); i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
        if (strncmp(t->name, "expect_", 7) == 0) continue;
        char key[128];
        snprintf(key, sizeof key, "expect_f32.%s", t->name);
        const mcnn_st_tensor *e = mcnn_safetensors_find(st, key);
        if (e) {
            TEST_ASSERT(e->numel == t->numel, "%s numel", t->name);
            float *got = malloc((t->numel + 1) * sizeof *got), *want = malloc((e->numel + 1) * sizeof *want);
            TEST_OK(mcnn_safetensors_read_f32(st, t, got));
            TEST_OK(mcnn_safetensors_read_f32(st, e, want));
            int shown = 0;
            for (size_t j = 0; j < t->numel && j < e->numel; j++) /* bit-exact, NaN payloads too */
                if (f32_bits(got[j]) != f32_bits(want[j]) && shown++ < 5)
                    TEST_ASSERT(0, "%s (%s)[%zu]: got %.9g (0x%08x) want %.9g (0x%08x)", t->name,
                                mcnn_dtype_name(t->dtype), j, got[j], f32_bits(got[j]), want[j],
                                f32_bits(want[j]));
            free(got);
            free(want);
            checked_f32++;
        }
        snprintf(key, sizeof key, "expect_i32.%s", t->name);
        e = mcnn_safetensors_find(st, key);
        int32_t *got = malloc((t->numel + 1) * sizeof *got);
        mcnn_status s = mcnn_safetensors_read_i32(st, t, got);
        if (e) {
            int32_t *want = malloc((e->numel + 1) * sizeof *want);
            TEST_OK(s);
            TEST_OK(mcnn_safetensors_read_i32(st, e, want));
            for (size_t j = 0; s == MCNN_OK && j < t->numel; j++)
                TEST_ASSERT(got[j] == want[j], "%s as int32 [%zu]: got %d want %d", t->name, j,
                            (int)got[j], (int)want[j]);
            free(want);
            checked_i32++;
        } else if (t->numel > 0) {
            /* no int32 answer: out of range (i64_big) or not whole numbers (nan, 1/3, ...) */
            TEST_ASSERT(s == MCNN_ERR_FORMAT && strstr(mcnn_last_error(), "safetensors_dtypes.safetensors: ") &&
                            strstr(mcnn_last_error(), t->name),
                        "%s read as int32 should fail, got %s: %s", t->name, mcnn_strerror(s),
                        mcnn_last_error());
        }
        free(got);
    }
    TEST_ASSERT(checked_f32 == 14 && checked_i32 == 8, "checked %d float, %d int conversions",
                checked_f32, checked_i32);

    /* the shapes as numpy wrote them, including a scalar and an empty tensor */
    const mcnn_st_tensor *t = mcnn_safetensors_find(st, "f16_random");
    TEST_ASSERT(t && t->dtype == MCNN_DTYPE_F16 && t->ndim == 3 && t->shape[0] == 3 &&
                    t->shape[1] == 5 && t->shape[2] == 7 && t->numel == 105 && t->nbytes == 210,
                "f16_random header");
    t = mcnn_safetensors_find(st, "scalar");
    float x = 0;
    TEST_ASSERT(t && t->ndim == 0 && t->numel == 1 && t->nbytes == 4, "scalar header");
    TEST_OK(mcnn_safetensors_read_f32(st, t, &x));
    TEST_CLOSE("scalar", x, 2.5, 0, 0);
    t = mcnn_safetensors_find(st, "empty");
    TEST_ASSERT(t && t->ndim == 3 && t->shape[1] == 0 && t->numel == 0 && t->nbytes == 0, "empty header");
    TEST_OK(mcnn_safetensors_read_f32(st, t, &x));

    /* metadata: escapes, \u escapes and a surrogate pair (json.dumps wrote them) */
    const char *note = mcnn_safetensors_meta(st, "note");
    TEST_ASSERT(note && strcmp(note, "quote \" backslash \\ slash / newline \n tab \t e-acute \xC3\xA9 "
                                     "kanji \xE6\x97\xA5\xE6\x9C\xAC emoji \xF0\x9F\x98\x80 end") == 0,
                "meta note = %s", note ? note : "NULL");
    const char *empty = mcnn_safetensors_meta(st, "empty"), *fmt = mcnn_safetensors_meta(st, "format");
    TEST_ASSERT(empty && empty[0] == '\0' && fmt && strcmp(fmt, "pt") == 0, "meta empty, format");
    mcnn_safetensors_close(st);
}

/* ---- the writer -------------------------------------------------------------------------- */

static size_t file_bytes(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* The exact bytes the format prescribes for a tiny file. */
static void test_write_format(void)
{
    const char *path = scratch("format");
    const float w[2] = {1.0f, -2.0f};
    mcnn_st_entry e = {"w", MCNN_DTYPE_F32, 1, {2}, w};
    const char *meta[2] = {"k", "v\"1"};
    TEST_OK(mcnn_safetensors_write(path, &e, 1, meta, 1));
    const char *hdr = "{\"__metadata__\":{\"k\":\"v\\\"1\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
                      "\"data_offsets\":[0,8]}}";
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    unsigned char buf[256];
    size_t n = file_bytes(path, buf, sizeof buf);
    TEST_ASSERT(n == 8 + padded + 8, "file is %zu bytes, want %zu", n, 8 + padded + 8);
    if (n != 8 + padded + 8) return;
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | buf[i];
    TEST_ASSERT(len == padded, "header length %llu want %zu", (unsigned long long)len, padded);
    TEST_ASSERT(memcmp(buf + 8, hdr, hl) == 0, "header text: %.*s", (int)hl, (const char *)buf + 8);
    for (size_t i = hl; i < padded; i++) TEST_ASSERT(buf[8 + i] == ' ', "padding byte %zu", i);
    /* float32 1.0 and -2.0, little-endian */
    static const unsigned char data[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0};
    TEST_ASSERT(memcmp(buf + 8 + padded, data, 8) == 0, "data bytes");
    remove(path);
}

static void test_round_trip(void)
{
    const char *path = scratch("roundtrip");
    float a[2 * 3 * 5];
    test_fill_random(a, 30, 1);
    int32_t b[4] = {INT32_MIN, -1, 0, INT32_MAX};
    int64_t c[3] = {INT64_MIN, 12345678901234LL, 7};
    uint16_t h[3] = {0x3C00, 0x8001, 0x7C00}; /* half 1, -2^-24, +inf */
    uint8_t u[5] = {0, 1, 2, 254, 255};
    float s = -0.0f;
    mcnn_st_entry e[] = {
        {"z.last", MCNN_DTYPE_F32, 3, {2, 3, 5}, a},
        {"b \"quoted\"\\name\n", MCNN_DTYPE_I32, 2, {2, 2}, b},
        {"caf\xC3\xA9.\xF0\x9F\x98\x80", MCNN_DTYPE_I64, 1, {3}, c},
        {"half", MCNN_DTYPE_F16, 1, {3}, h},
        {"bytes", MCNN_DTYPE_U8, 1, {5}, u},
        {"scalar", MCNN_DTYPE_F32, 0, {0}, &s},
        {"empty", MCNN_DTYPE_F32, 2, {0, 4}, NULL},
    };
    const int n = (int)(sizeof e / sizeof e[0]);
    const char *meta[] = {"format", "pt", "note", "tab\there \"q\" \\ \x01 \xE6\x97\xA5", "", "empty key"};
    TEST_OK(mcnn_safetensors_write(path, e, n, meta, 3));
    mcnn_safetensors *st;
    TEST_OK(mcnn_safetensors_open(&st, path));
    if (!st) return;
    TEST_ASSERT(mcnn_safetensors_count(st) == n, "count %d", mcnn_safetensors_count(st));
    unsigned char got[256];
    size_t expect_off = 0;
    for (int i = 0; i < n && i < mcnn_safetensors_count(st); i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i); /* header keeps the written order */
        TEST_ASSERT(strcmp(t->name, e[i].name) == 0, "tensor %d is '%s', want '%s'", i, t->name, e[i].name);
        TEST_ASSERT(mcnn_safetensors_find(st, e[i].name) == t, "find '%s'", e[i].name);
        TEST_ASSERT(t->dtype == e[i].dtype && t->ndim == e[i].ndim, "'%s' dtype/ndim", e[i].name);
        for (int d = 0; d < t->ndim; d++) TEST_ASSERT(t->shape[d] == e[i].shape[d], "'%s' shape", e[i].name);
        TEST_ASSERT(t->offset == expect_off, "'%s' offset %zu want %zu", e[i].name, t->offset, expect_off);
        expect_off += t->nbytes;
        /* raw bytes back, through the int32/float32 readers where they are exact */
        if (t->dtype == MCNN_DTYPE_F32) {
            TEST_OK(mcnn_safetensors_read_f32(st, t, (float *)(void *)got));
            TEST_ASSERT(t->nbytes == 0 || memcmp(got, e[i].data, t->nbytes) == 0, "'%s' data", e[i].name);
        }
    }
    int32_t bi[4];
    TEST_OK(mcnn_safetensors_read_i32(st, mcnn_safetensors_find(st, e[1].name), bi));
    TEST_ASSERT(memcmp(bi, b, sizeof b) == 0, "int32 data");
    float cf[3];
    TEST_OK(mcnn_safetensors_read_f32(st, mcnn_safetensors_find(st, e[2].name), cf));
    TEST_ASSERT(cf[0] == -9223372036854775808.0f && cf[1] == (float)12345678901234LL && cf[2] == 7.0f, "int64 data");
    float hf[3];
    TEST_OK(mcnn_safetensors_read_f32(st, mcnn_safetensors_find(st, "half"), hf));
    TEST_ASSERT(hf[0] == 1.0f && hf[1] == -ldexpf(1.0f, -24) && isinf(hf[2]) && hf[2] > 0, "half data");
    int32_t ui[5];
    TEST_OK(mcnn_safetensors_read_i32(st, mcnn_safetensors_find(st, "bytes"), ui));
    TEST_ASSERT(ui[0] == 0 && ui[3] == 254 && ui[4] == 255, "u8 data");
    for (int k = 0; k < 3; k++) {
        const char *v = mcnn_safetensors_meta(st, meta[2 * k]);
        TEST_ASSERT(v && strcmp(v, meta[2 * k + 1]) == 0, "meta '%s' = %s", meta[2 * k], v ? v : "NULL");
    }
    mcnn_safetensors_close(st);

    /* an empty file: no tensors, no metadata */
    TEST_OK(mcnn_safetensors_write(path, NULL, 0, NULL, 0));
    TEST_OK(mcnn_safetensors_open(&st, path));
    if (st) {
        TEST_ASSERT(mcnn_safetensors_count(st) == 0 && !mcnn_safetensors_meta(st, "format"), "empty file");
        mcnn_safetensors_close(st);
    }
    remove(path);
}

/* The writer refuses what the reader would refuse, and never replaces the old file on failure. */
static void test_write_atomic(void)
{
    const char *path = scratch("atomic");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    float v[4] = {1, 2, 3, 4};
    mcnn_st_entry good = {"v", MCNN_DTYPE_F32, 1, {4}, v};
    TEST_OK(mcnn_safetensors_write(path, &good, 1, NULL, 0));
    unsigned char before[256], after[256];
    size_t nb = file_bytes(path, before, sizeof before);
    TEST_ASSERT(nb > 16, "first write: %zu bytes", nb);

    mcnn_status s = mcnn_safetensors_write("/nonexistent-mcnn-dir/x.safetensors", &good, 1, NULL, 0);
    TEST_ASSERT(s == MCNN_ERR_IO && strstr(mcnn_last_error(), "/nonexistent-mcnn-dir/x.safetensors: "),
                "missing directory: %s: %s", mcnn_strerror(s), mcnn_last_error());

    /* invalid requests, each refused before anything is written */
    mcnn_st_entry dup[2] = {good, good};
    mcnn_st_entry bad = good;
    const char *meta_dup[4] = {"a", "1", "a", "2"}, *meta_null[2] = {"a", NULL};
    struct {
        const mcnn_st_entry *e;
        int n;
        const char *const *meta;
        int nmeta;
        const char *msg;
    } cases[] = {
        {dup, 2, NULL, 0, "tensor 'v' given twice"},
        {&bad, 1, NULL, 0, "ndim"},
        {&bad, 1, NULL, 0, "shape[0] is -4"},
        {&bad, 1, NULL, 0, "has no data"},
        {&bad, 1, NULL, 0, "reserved"},
        {&bad, 1, NULL, 0, "not valid UTF-8"},
        {&bad, 1, NULL, 0, "invalid dtype"},
        {&bad, 1, NULL, 0, "too large"},
        {&good, 1, meta_dup, 2, "metadata key 'a' given twice"},
        {&good, 1, meta_null, 1, "metadata value 0 is NULL"},
    };
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        bad = good;
        if (k == 1) bad.ndim = 9;
        if (k == 2) bad.shape[0] = -4;
        if (k == 3) bad.data = NULL;
        if (k == 4) bad.name = "__metadata__";
        if (k == 5) bad.name = "bad\xFF";
        if (k == 6) bad.dtype = (mcnn_dtype)42;
        if (k == 7) bad.ndim = 4, bad.shape[1] = bad.shape[2] = bad.shape[3] = INT64_MAX / 2;
        s = mcnn_safetensors_write(path, cases[k].e, cases[k].n, cases[k].meta, cases[k].nmeta);
        TEST_ASSERT(s == MCNN_ERR_ARG && strstr(mcnn_last_error(), path) &&
                        strstr(mcnn_last_error(), cases[k].msg),
                    "case %d: %s: %s", k, mcnn_strerror(s), mcnn_last_error());
        TEST_ASSERT(file_bytes(path, after, sizeof after) == nb && memcmp(before, after, nb) == 0,
                    "case %d changed the old file", k);
    }

    /* a failure in the middle of writing: the file size limit stops the temporary file */
    static float big[1 << 14];
    mcnn_st_entry large = {"big", MCNN_DTYPE_F32, 1, {1 << 14}, big};
    struct rlimit old;
    if (getrlimit(RLIMIT_FSIZE, &old) == 0) {
        struct rlimit lim = old;
        lim.rlim_cur = 4096;
        void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); /* get EFBIG instead of being killed */
        if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
            s = mcnn_safetensors_write(path, &large, 1, NULL, 0);
            setrlimit(RLIMIT_FSIZE, &old);
            TEST_ASSERT(s == MCNN_ERR_IO && strstr(mcnn_last_error(), path) &&
                            strstr(mcnn_last_error(), "unchanged"),
                        "size-limited write: %s: %s", mcnn_strerror(s), mcnn_last_error());
            TEST_ASSERT(file_bytes(path, after, sizeof after) == nb && memcmp(before, after, nb) == 0,
                        "failed write changed the old file");
            TEST_ASSERT(!file_exists(tmp), "temporary file %s left behind", tmp);
        }
        signal(SIGXFSZ, prev);
    }

    /* rename cannot replace a directory: the temporary file must go */
    const char *dir = scratch("dir");
    if (mkdir(dir, 0700) == 0) {
        char dtmp[600];
        snprintf(dtmp, sizeof dtmp, "%s.tmp.%ld", dir, (long)getpid());
        s = mcnn_safetensors_write(dir, &good, 1, NULL, 0);
        TEST_ASSERT(s == MCNN_ERR_IO && strstr(mcnn_last_error(), dir), "directory target: %s",
                    mcnn_last_error());
        TEST_ASSERT(!file_exists(dtmp), "temporary file %s left behind", dtmp);
        rmdir(dir);
    }

    /* and a good write does replace it */
    v[0] = 42;
    TEST_OK(mcnn_safetensors_write(path, &good, 1, NULL, 0));
    mcnn_safetensors *st;
    TEST_OK(mcnn_safetensors_open(&st, path));
    if (st) {
        float r[4] = {0};
        TEST_OK(mcnn_safetensors_load_f32(st, "v", r, 1, (const int64_t[]){4}));
        TEST_ASSERT(r[0] == 42 && r[3] == 4, "rewritten file: %g %g", r[0], r[3]);
        mcnn_safetensors_close(st);
    }
    TEST_ASSERT(!file_exists(tmp), "temporary file %s left behind", tmp);
    remove(path);
}

/* ---- corrupt files: each rejected with a message naming the file --------------------------- */

static int write_raw(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(bytes, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* 8-byte length (hdr_len, or strlen(header) when hdr_len is ~0), the header, data_len zeros. */
static int write_st(const char *path, uint64_t hdr_len, const char *header, size_t header_bytes,
                    size_t data_len)
{
    size_t n = 8 + header_bytes + data_len;
    unsigned char *b = calloc(n, 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hdr_len >> (8 * i));
    memcpy(b + 8, header, header_bytes);
    int ok = write_raw(path, b, n);
    free(b);
    return ok;
}

typedef struct corrupt_case {
    const char *what;
    const char *header; /* NULL: raw bytes below */
    size_t data_len;
    mcnn_status status;
    const char *msg;    /* must appear in the error after "<path>: " */
} corrupt_case;

#define T1 "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}"
static const corrupt_case corrupt_cases[] = {
    {"bad JSON", "{\"x\":{\"dtype\":\"F32\",", 16, MCNN_ERR_FORMAT, "header: JSON: "},
    {"trailing garbage", "{} x", 0, MCNN_ERR_FORMAT, "unexpected text after the JSON value"},
    {"trailing comma", T1 ",}", 16, MCNN_ERR_FORMAT, "expected a string key"},
    {"header an array", "[1,2]", 0, MCNN_ERR_FORMAT, "header is a JSON array, expected an object"},
    {"invalid UTF-8", "{\"x\xC0\xAF\":1}", 0, MCNN_ERR_FORMAT, "invalid UTF-8"},
    {"deep nesting", NULL, 0, MCNN_ERR_FORMAT, "nesting deeper than"},
    {"entry not an object", "{\"x\":[1]}", 0, MCNN_ERR_FORMAT, "tensor 'x' is a JSON array, expected an object"},
    {"missing dtype", "{\"x\":{\"shape\":[4],\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT, "tensor 'x' has no \"dtype\""},
    {"missing shape", "{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT, "tensor 'x' has no \"shape\""},
    {"missing offsets", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4]}}", 16, MCNN_ERR_FORMAT, "tensor 'x' has no \"data_offsets\""},
    {"unknown dtype", "{\"x\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, MCNN_ERR_UNSUPPORTED, "tensor 'x' has unknown dtype 'F8_E4M3'"},
    {"dtype a number", "{\"x\":{\"dtype\":4,\"shape\":[4],\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT, "non-string dtype"},
    {"offset past end", "{\"x\":{\"dtype\":\"F32\",\"shape\":[25],\"data_offsets\":[0,100]}}", 64, MCNN_ERR_FORMAT,
     "tensor 'x' data_offsets [0, 100] exceed the data section (64 bytes)"},
    {"offsets reversed", "{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,0]}}", 16, MCNN_ERR_FORMAT, "end before they begin"},
    {"offsets three", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16,32]}}", 32, MCNN_ERR_FORMAT, "data_offsets is not two non-negative integers"},
    {"offset negative", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-16,0]}}", 16, MCNN_ERR_FORMAT, "data_offsets is not two"},
    {"offset 2^64-1", "{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[18446744073709551614,18446744073709551615]}}", 16, MCNN_ERR_FORMAT, "data_offsets is not two"},
    {"offset 2^63-1", "{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[9223372036854775806,9223372036854775807]}}", 16, MCNN_ERR_FORMAT, "exceed the data section"},
    {"shape/offset mismatch", "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT,
     "tensor 'x' is F32 [3] (12 bytes) but data_offsets [0, 16] span 16 bytes"},
    {"dtype size mismatch", "{\"x\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT, "F64 [4] (32 bytes)"},
    {"negative shape", "{\"x\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT, "tensor 'x' shape[0] is not a non-negative integer"},
    {"fractional shape", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2.5],\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT, "shape[1] is not a non-negative integer"},
    {"string shape", "{\"x\":{\"dtype\":\"F32\",\"shape\":[\"4\"],\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT, "shape[0] is not"},
    {"shape not an array", "{\"x\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT, "shape is not an array"},
    {"nine dimensions", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, MCNN_ERR_UNSUPPORTED, "9 dimensions"},
    {"shape overflow", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT, "overflows"},
    {"shape overflow by dtype", "{\"x\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT, "overflows"},
    {"overlap", T1 ",\"y\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24, MCNN_ERR_FORMAT,
     "tensors 'x' [0, 16] and 'y' [8, 24] overlap"},
    {"overlap, out of order", "{\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]},\"a\":{\"dtype\":\"U8\",\"shape\":[10],\"data_offsets\":[0,10]}}",
     16, MCNN_ERR_FORMAT, "overlap"},
    {"same bytes twice", T1 ",\"y\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT, "overlap"},
    {"duplicate name", T1 ",\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}", 32, MCNN_ERR_FORMAT, "tensor 'x' appears twice"},
    {"metadata not an object", T1 ",\"__metadata__\":[\"a\"]}", 16, MCNN_ERR_FORMAT, "__metadata__ is a JSON array, expected an object"},
    {"metadata number", T1 ",\"__metadata__\":{\"epoch\":3}}", 16, MCNN_ERR_FORMAT, "__metadata__ value of 'epoch' is a JSON number, expected a string"},
    {"metadata null", "{\"__metadata__\":{\"a\":\"b\",\"c\":null}}", 0, MCNN_ERR_FORMAT, "value of 'c' is a JSON null"},
    {"metadata nested", "{\"__metadata__\":{\"a\":{}}}", 0, MCNN_ERR_FORMAT, "value of 'a' is a JSON object"},
    {"metadata duplicate key", "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, MCNN_ERR_FORMAT, "key 'a' appears twice"},
    {"NUL in name", "{\"x\\u0000y\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, MCNN_ERR_UNSUPPORTED, "NUL"},
    {"lone surrogate", "{\"x\\ud800\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, MCNN_ERR_FORMAT, "surrogate"},
    {"header too short", "{", 0, MCNN_ERR_FORMAT, "too short for a JSON object"},
    {"empty header", "", 8, MCNN_ERR_FORMAT, "header length 0"},
};

static void expect_rejected(const char *path, const char *what, mcnn_status want, const char *msg)
{
    mcnn_safetensors *st = (mcnn_safetensors *)&st; /* must come back NULL */
    mcnn_status s = mcnn_safetensors_open(&st, path);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s: ", path);
    const char *err = mcnn_last_error();
    if (getenv("MCNN_TEST_VERBOSE")) fprintf(stderr, "  %-24s %s\n", what, err);
    TEST_ASSERT(s == want && st == NULL && strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, msg),
                "%s: got %s (%s), want %s with \"%s\"", what, mcnn_strerror(s), err, mcnn_strerror(want), msg);
    if (s == MCNN_OK) mcnn_safetensors_close(st);
}

/* A write never replaces what is not a regular file: as root, renaming over /dev/null would
 * turn the device into a file (a FIFO stands in for it here). */
static void test_write_not_over_devices(void)
{
    float v[2] = {1, 2};
    mcnn_st_entry e = {"v", MCNN_DTYPE_F32, 1, {2}, v};
    const char *fifo = scratch("fifo");
    unlink(fifo);
    TEST_ASSERT(mkfifo(fifo, 0600) == 0, "mkfifo");
    mcnn_status s = mcnn_safetensors_write(fifo, &e, 1, NULL, 0);
    struct stat sb;
    TEST_ASSERT(s == MCNN_ERR_IO && strstr(mcnn_last_error(), "not a regular file"), "fifo: %s",
                mcnn_last_error());
    TEST_ASSERT(stat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode), "the FIFO was replaced");
    unlink(fifo);
    char dir[600];
    snprintf(dir, sizeof dir, "%s", scratch("a_dir"));
    mkdir(dir, 0700);
    s = mcnn_safetensors_write(dir, &e, 1, NULL, 0);
    TEST_ASSERT(s == MCNN_ERR_IO && strstr(mcnn_last_error(), "directory"), "dir: %s",
                mcnn_last_error());
    rmdir(dir);
}

static void test_corrupt_headers(void)
{
    const char *path = scratch("corrupt");
    for (size_t k = 0; k < sizeof corrupt_cases / sizeof corrupt_cases[0]; k++) {
        const corrupt_case *c = &corrupt_cases[k];
        if (!c->header) { /* deep nesting: 100000 '[' would overflow a naive recursive parser */
            size_t depth = 100000;
            char *h = malloc(depth + 16);
            strcpy(h, "{\"x\":");
            memset(h + 5, '[', depth);
            strcpy(h + 5 + depth, "}");
            TEST_ASSERT(write_st(path, strlen(h), h, strlen(h), 0), "write %s", path);
            free(h);
        } else {
            TEST_ASSERT(write_st(path, strlen(c->header), c->header, strlen(c->header), c->data_len),
                        "write %s", path);
        }
        expect_rejected(path, c->what, c->status, c->msg);
    }
    remove(path);
}

/* Damage outside the JSON: sizes, lengths, truncation. */
static void test_corrupt_files(void)
{
    const char *path = scratch("damaged");
    const char *h = T1 "}";
    TEST_ASSERT(write_raw(path, "", 0), "write");
    expect_rejected(path, "empty file", MCNN_ERR_FORMAT, "file is 0 bytes, too short");
    TEST_ASSERT(write_raw(path, "\x10\0\0", 3), "write");
    expect_rejected(path, "3-byte file", MCNN_ERR_FORMAT, "file is 3 bytes");
    write_st(path, 1ull << 63, h, strlen(h), 16);
    expect_rejected(path, "header length 2^63", MCNN_ERR_FORMAT, "header length 9223372036854775808 exceeds the file");
    write_st(path, UINT64_MAX, h, strlen(h), 16);
    expect_rejected(path, "header length 2^64-1", MCNN_ERR_FORMAT, "exceeds the file");
    write_st(path, strlen(h) + 100, h, strlen(h), 16);
    expect_rejected(path, "truncated header", MCNN_ERR_FORMAT, "exceeds the file");
    write_st(path, strlen(h), h, strlen(h), 15);
    expect_rejected(path, "truncated data", MCNN_ERR_FORMAT, "exceed the data section (15 bytes)");
    write_st(path, strlen(h) - 1, h, strlen(h), 16);
    expect_rejected(path, "header length one short", MCNN_ERR_FORMAT, "JSON");

    /* a header length over the 100 MB limit, in a sparse file big enough to hold it */
    FILE *f = fopen(path, "wb");
    if (f) {
        uint64_t n = 150000000;
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(n >> (8 * i));
        fwrite(len8, 1, 8, f);
        fwrite(h, 1, strlen(h), f);
        if (fseek(f, (long)(n + 8), SEEK_SET) == 0) fputc(0, f);
        fclose(f);
        expect_rejected(path, "150 MB header", MCNN_ERR_FORMAT, "over the 100 MB limit");
    }

    expect_rejected("/nonexistent-mcnn-dir/none.safetensors", "missing file", MCNN_ERR_IO, "cannot open");

    /* the file shrinks after open: reading fails cleanly */
    /* (64 KB of data, more than stdio buffers while reading the header) */
    const char *hb = "{\"x\":{\"dtype\":\"F32\",\"shape\":[16384],\"data_offsets\":[0,65536]}}";
    write_st(path, strlen(hb), hb, strlen(hb), 65536);
    mcnn_safetensors *st;
    TEST_OK(mcnn_safetensors_open(&st, path));
    if (st) {
        write_st(path, strlen(hb), hb, strlen(hb), 100); /* same inode, truncated */
        static float x[16384];
        mcnn_status s = mcnn_safetensors_read_f32(st, mcnn_safetensors_find(st, "x"), x);
        TEST_ASSERT(s == MCNN_ERR_IO && strstr(mcnn_last_error(), path) && strstr(mcnn_last_error(), "'x'"),
                    "read after truncation: %s: %s", mcnn_strerror(s), mcnn_last_error());
        /* a tensor handle from another file is refused */
        mcnn_st_tensor fake = *mcnn_safetensors_find(st, "x");
        s = mcnn_safetensors_read_f32(st, &fake, x);
        TEST_ASSERT(s == MCNN_ERR_ARG, "foreign handle: %s", mcnn_strerror(s));
        mcnn_safetensors_close(st);
    }
    remove(path);
}

int main(void)
{
    TEST_RUN(test_ref_clip_tiny_ref);
    TEST_RUN(test_ref_tokens);
    TEST_RUN(test_ref_weights_and_train);
    TEST_RUN(test_dtype_conversions);
    TEST_RUN(test_write_format);
    TEST_RUN(test_round_trip);
    TEST_RUN(test_write_atomic);
    TEST_RUN(test_write_not_over_devices);
    TEST_RUN(test_corrupt_headers);
    TEST_RUN(test_corrupt_files);
    return test_summary();
}
