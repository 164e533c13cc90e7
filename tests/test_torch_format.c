/* PyTorch's files read without Python: the files in tests/data/torch/ were written by Debian's
 * torch 1.13 (tests/ref/gen_torch_files.py), and each good file's golden holds what torch.load
 * returns for it.  Judged here: every tensor bit for bit (raw bytes, in the file's dtype), the
 * names, the models loaded from a TorchScript CLIP archive and torchvision .pth files against
 * PyTorch's outputs, and the hostile files refused with the message the issue asks for -
 * without running their payloads (which would create PWNED) and without crashing, also when
 * every byte of a real file is cut off or flipped. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIR "tests/data/torch/"
#define PWNED "/tmp/mcnn_torch_pwned"

static const char *golden_extras[] = {"image", "tokens", "image_features", "text_features"};

static int is_extra(const char *name)
{
    for (size_t i = 0; i < sizeof golden_extras / sizeof golden_extras[0]; i++)
        if (strcmp(name, golden_extras[i]) == 0) return 1;
    return 0;
}

static unsigned char *read_raw(mcnn_safetensors *st, const mcnn_st_tensor *t)
{
    unsigned char *p = malloc(t->nbytes + 1);
    mcnn_status s = mcnn_safetensors_read_raw(st, t, p);
    TEST_ASSERT(s == MCNN_OK, "%s", mcnn_last_error());
    if (s != MCNN_OK) {
        free(p);
        return NULL;
    }
    return p;
}

/* Every golden tensor is in the file with its dtype, shape and bytes, and nothing else is. */
static void compare_file(const char *file, mcnn_weights_format format)
{
    char path[256], gpath[300];
    snprintf(path, sizeof path, DIR "%s", file);
    snprintf(gpath, sizeof gpath, DIR "%s.golden.safetensors", file);
    mcnn_safetensors *st = NULL, *g = NULL;
    TEST_OK(mcnn_safetensors_open(&st, path));
    TEST_OK(mcnn_safetensors_open(&g, gpath));
    if (!st || !g) goto done;
    TEST_ASSERT(mcnn_safetensors_format(st) == format, "%s: format %s", file,
                mcnn_weights_format_name(mcnn_safetensors_format(st)));
    int expected = 0;
    for (int i = 0; i < mcnn_safetensors_count(g); i++) {
        const mcnn_st_tensor *w = mcnn_safetensors_at(g, i), *t = mcnn_safetensors_find(st, w->name);
        if (is_extra(w->name)) continue;
        expected++;
        TEST_ASSERT(t, "%s: no tensor '%s'", file, w->name);
        if (!t) continue;
        int same = t->dtype == w->dtype && t->ndim == w->ndim && t->numel == w->numel;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == w->shape[d];
        TEST_ASSERT(same, "%s: '%s' is %s with %d dims, expected %s with %d", file, w->name,
                    mcnn_dtype_name(t->dtype), t->ndim, mcnn_dtype_name(w->dtype), w->ndim);
        if (!same) continue;
        unsigned char *a = read_raw(st, t), *b = read_raw(g, w);
        TEST_ASSERT(a && b && memcmp(a, b, t->nbytes) == 0, "%s: '%s' differs from torch.load's", file, w->name);
        free(a);
        free(b);
    }
    TEST_ASSERT(mcnn_safetensors_count(st) == expected, "%s: %d tensors, expected %d", file,
                mcnn_safetensors_count(st), expected);
done:
    mcnn_safetensors_close(st);
    mcnn_safetensors_close(g);
}

static void test_state_dict_zip(void) { compare_file("state_dict.pt", MCNN_FORMAT_TORCH_ZIP); }
static void test_state_dict_legacy(void) { compare_file("legacy.pt", MCNN_FORMAT_TORCH_LEGACY); }
static void test_pickle_protocol_4(void)
{
    compare_file("protocol4.pt", MCNN_FORMAT_TORCH_ZIP);
    compare_file("legacy_protocol4.pt", MCNN_FORMAT_TORCH_LEGACY);
}
static void test_dtypes(void) { compare_file("dtypes.pt", MCNN_FORMAT_TORCH_ZIP); }
static void test_views_and_shared_storages(void) { compare_file("views.pt", MCNN_FORMAT_TORCH_ZIP); }
static void test_deflated_archive(void) { compare_file("deflated.pt", MCNN_FORMAT_TORCH_ZIP); }
static void test_zip64_archive(void) { compare_file("zip64.pt", MCNN_FORMAT_TORCH_ZIP); }
static void test_checkpoint_unwrapped(void)
{
    compare_file("checkpoint.pth", MCNN_FORMAT_TORCH_ZIP); /* {"state_dict": ..., "optimizer": ...} */
    compare_file("model_key.pth", MCNN_FORMAT_TORCH_ZIP);  /* {"model": {"head": {"weight"}}} */
}
static void test_torchscript_names(void) { compare_file("clip_ts.pt", MCNN_FORMAT_TORCHSCRIPT); }
/* torch.jit.script's typed attributes (torch.jit._pickle.build_intlist, restore_type_tag, ...) */
static void test_scripted_module(void) { compare_file("scripted.pt", MCNN_FORMAT_TORCHSCRIPT); }

/* read_f32 through a strided view: the transpose, read as floats, is base read and transposed
 * here; a bfloat16 tensor converts to the float32 whose top half it is. */
static void test_read_f32_of_views(void)
{
    mcnn_safetensors *st = NULL;
    TEST_OK(mcnn_safetensors_open(&st, DIR "views.pt"));
    if (!st) return;
    float base[60], tr[60], strided[12];
    TEST_OK(mcnn_safetensors_read_f32(st, mcnn_safetensors_find(st, "base"), base));
    TEST_OK(mcnn_safetensors_read_f32(st, mcnn_safetensors_find(st, "transposed"), tr));
    const int64_t shape[2] = {4, 3};
    TEST_OK(mcnn_safetensors_load_f32(st, "strided", strided, 2, shape)); /* base[1:5, 2::3] */
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 10; j++) TEST_ASSERT(tr[j * 6 + i] == base[i * 10 + j], "transposed[%d][%d]", j, i);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            TEST_ASSERT(strided[i * 3 + j] == base[(1 + i) * 10 + 2 + 3 * j], "strided[%d][%d]", i, j);
    mcnn_safetensors_close(st);

    TEST_OK(mcnn_safetensors_open(&st, DIR "dtypes.pt"));
    if (!st) return;
    const mcnn_st_tensor *bf = mcnn_safetensors_find(st, "bf16");
    uint16_t bits[30];
    float f[30];
    TEST_OK(mcnn_safetensors_read_raw(st, bf, bits));
    TEST_OK(mcnn_safetensors_read_f32(st, bf, f));
    for (int i = 0; i < 30; i++) {
        uint32_t u = (uint32_t)bits[i] << 16;
        float want;
        memcpy(&want, &u, 4);
        TEST_ASSERT(f[i] == want, "bf16[%d]", i);
    }
    int32_t ints[3];
    TEST_ASSERT(mcnn_safetensors_read_i32(st, mcnn_safetensors_find(st, "i64"), ints) == MCNN_ERR_FORMAT,
                "2^40 does not fit in int32");
    mcnn_safetensors_close(st);
}

/* OpenAI-style TorchScript CLIP: loaded by mcnn_clip_load, its encoders match PyTorch's. */
static void test_clip_from_torchscript(void)
{
    mcnn_clip *m = NULL;
    mcnn_safetensors *g = NULL;
    const mcnn_clip_load_options opt = {.vision_heads = 2, .text_heads = 2};
    TEST_OK(mcnn_clip_load(&m, DIR "clip_ts.pt", &opt));
    TEST_OK(mcnn_safetensors_open(&g, DIR "clip_ts.pt.golden.safetensors"));
    if (!m || !g) goto done;
    float *image = test_golden(g, "image", NULL), *want_i = test_golden(g, "image_features", NULL),
          *want_t = test_golden(g, "text_features", NULL);
    int32_t *tokens = test_golden_i32(g, "tokens", NULL);
    float got_i[16], got_t[16];
    if (image && tokens && want_i && want_t) {
        TEST_OK(mcnn_clip_encode_image(m, got_i, image, 2));
        TEST_OK(mcnn_clip_encode_text(m, got_t, tokens, 2));
        test_close_rel("encode_image", got_i, want_i, 16, 1e-4);
        test_close_rel("encode_text", got_t, want_t, 16, 1e-4);
    }
    free(image), free(want_i), free(want_t), free(tokens);
done:
    mcnn_clip_free(m);
    mcnn_safetensors_close(g);
}

/* torchvision's own .pth layout (zip for the ResNet, legacy for the ViT) through the loaders,
 * and the ResNet through the classifier every app uses. */
static void test_torchvision_models(void)
{
    mcnn_safetensors *g = NULL;
    mcnn_resnet *r = NULL;
    TEST_OK(mcnn_resnet_load(&r, DIR "resnet_tv.pth", NULL));
    TEST_OK(mcnn_safetensors_open(&g, DIR "resnet_tv.pth.golden.safetensors"));
    if (r && g) {
        float *x = test_golden(g, "input", NULL), *want = test_golden(g, "logits", NULL), got[5];
        if (x && want) {
            TEST_OK(mcnn_resnet_forward(r, got, x, 1, 32, 32, MCNN_RESNET_EVAL));
            test_close_rel("resnet logits", got, want, 5, 1e-4);
        }
        free(x), free(want);
    }
    mcnn_resnet_free(r);
    mcnn_safetensors_close(g);
    g = NULL;
    mcnn_classifier *c = NULL; /* what mcnn-classify --model and mcnn-train eval use */
    TEST_OK(mcnn_classifier_load(&c, DIR "resnet_tv.pth", NULL));
    TEST_ASSERT(c && mcnn_classifier_num_classes(c) == 5, "a 5-class classifier");
    mcnn_classifier_free(c);
    mcnn_vit *v = NULL;
    const mcnn_vit_load_options vo = {.heads = 2};
    TEST_OK(mcnn_vit_load(&v, DIR "vit_tv.pth", &vo));
    TEST_OK(mcnn_safetensors_open(&g, DIR "vit_tv.pth.golden.safetensors"));
    if (v && g) {
        float *x = test_golden(g, "input", NULL), *want = test_golden(g, "logits", NULL), got[6];
        if (x && want) {
            TEST_OK(mcnn_vit_forward(v, got, x, 2, 0));
            test_close_rel("vit logits", got, want, 6, 1e-4);
        }
        free(x), free(want);
    }
    mcnn_vit_free(v);
    mcnn_safetensors_close(g);
}

/* Each hostile file: refused with this status and a message containing this phrase; the
 * refusal comes at open, or (read = 1) when its tensor is read. */
static const struct {
    const char *file;
    mcnn_status status;
    int read;
    const char *phrase;
} hostile[] = {
    {"evil_os_system.pt", MCNN_ERR_UNSUPPORTED, 0, "refusing the global 'os.system'"},
    {"evil_posix_system.pt", MCNN_ERR_UNSUPPORTED, 0, "refusing the global 'posix.system'"},
    {"evil_builtins_eval.pt", MCNN_ERR_UNSUPPORTED, 0, "refusing the global 'builtins.eval'"},
    {"evil_nested_global.pt", MCNN_ERR_UNSUPPORTED, 0, "refusing the global 'subprocess.check_call'"},
    {"evil_legacy_os_system.pt", MCNN_ERR_UNSUPPORTED, 0, "refusing the global 'os.system'"},
    {"evil_torch_class_reduce.pt", MCNN_ERR_UNSUPPORTED, 0, "'__torch__.M' cannot be called"},
    {"evil_newobj_other.pt", MCNN_ERR_UNSUPPORTED, 0, "not a TorchScript class"},
    {"evil_memo_huge.pt", MCNN_ERR_FORMAT, 0, "memo index out of range"},
    {"evil_memo_unset.pt", MCNN_ERR_FORMAT, 0, "memo lookup of an index never stored"},
    {"evil_deep_marks.pt", MCNN_ERR_FORMAT, 0, "MARKs nested too deeply"},
    {"evil_deep_lists.pt", MCNN_ERR_FORMAT, 0, "nested more than 64 levels"},
    {"evil_cyclic.pt", MCNN_ERR_FORMAT, 0, "cyclic reference"},
    {"evil_shared_blowup.pt", MCNN_ERR_FORMAT, 0, "refers to its parts too many times"},
    {"evil_truncated_zip.pt", MCNN_ERR_FORMAT, 0, "no zip end-of-directory record"},
    {"evil_truncated_pickle.pt", MCNN_ERR_FORMAT, 0, "ends before its STOP"},
    {"evil_truncated_legacy.pt", MCNN_ERR_FORMAT, 0, "more than the file holds"},
    {"evil_bomb_past_size.pt", MCNN_ERR_FORMAT, 0, "inflates to more than 1000 bytes"},
    {"evil_bomb_ratio.pt", MCNN_ERR_FORMAT, 0, "more than deflate can expand"},
    {"evil_overlap.pt", MCNN_ERR_FORMAT, 0, "'archive/data/0' and 'archive/data/1' overlap"},
    {"evil_storage_short.pt", MCNN_ERR_FORMAT, 0, "should hold 400 bytes but 'archive/data/0' has 24"},
    {"evil_view_past_storage.pt", MCNN_ERR_FORMAT, 0, "reaches element 7 of a storage of 6"},
    {"evil_two_sizes.pt", MCNN_ERR_FORMAT, 0, "has two sizes (8 and 12)"},
    {"evil_directory_outside.pt", MCNN_ERR_FORMAT, 0, "is not inside the archive"},
    {"evil_missing_storage.pt", MCNN_ERR_FORMAT, 0, "has no entry 'archive/data/0'"},
    {"evil_no_data_pkl.pt", MCNN_ERR_FORMAT, 0, "not PyTorch's (no */data.pkl)"},
    {"evil_protocol0.pt", MCNN_ERR_UNSUPPORTED, 0, "(protocol 0) is not read"},
    {"evil_complex.pt", MCNN_ERR_UNSUPPORTED, 0, "'torch.ComplexFloatStorage'"},
    {"evil_bad_crc.pt", MCNN_ERR_FORMAT, 1, "is corrupt: zip entry 'archive/data/0' has CRC-32"},
};

static void test_hostile_files_refused(void)
{
    unlink(PWNED);
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, DIR "%s", hostile[i].file);
        mcnn_safetensors *st = NULL;
        mcnn_status s = mcnn_safetensors_open(&st, path);
        if (hostile[i].read && s == MCNN_OK) {
            float buf[8];
            s = mcnn_safetensors_read_f32(st, mcnn_safetensors_at(st, 0), buf);
        }
        const char *msg = mcnn_last_error();
        TEST_ASSERT(s == hostile[i].status, "%s: status %s, expected %s (%s)", hostile[i].file,
                    mcnn_strerror(s), mcnn_strerror(hostile[i].status), msg);
        TEST_ASSERT(strstr(msg, hostile[i].phrase) && strstr(msg, hostile[i].file),
                    "%s: the message lacks '%s': %s", hostile[i].file, hostile[i].phrase, msg);
        mcnn_safetensors_close(st);
    }
    struct stat sb;
    TEST_ASSERT(stat(PWNED, &sb) != 0, "a payload ran: %s exists", PWNED);
}

/* Every prefix of a real archive and of a legacy file, and every byte flipped: refused or read,
 * never a crash (ASan/UBSan watch in `make SANITIZE=1 test`). */
static void mutate(const char *file, int prefixes)
{
    unsigned char *data = NULL;
    size_t n = 0;
    char src[256], tmp[64];
    snprintf(src, sizeof src, DIR "%s", file);
    snprintf(tmp, sizeof tmp, "/tmp/mcnn_torch_mutant_%d.pt", (int)getpid());
    FILE *f = fopen(src, "rb");
    TEST_ASSERT(f, "cannot open %s", src);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc(n);
    TEST_ASSERT(fread(data, 1, n, f) == n, "read %s", src);
    fclose(f);
    int opened = 0;
    for (size_t k = 0; k < n; k++) {
        if (!(f = fopen(tmp, "wb"))) break;
        if (prefixes) fwrite(data, 1, k, f);
        else {
            data[k] ^= 0xA5;
            fwrite(data, 1, n, f);
            data[k] ^= 0xA5;
        }
        fclose(f);
        mcnn_safetensors *st = NULL;
        if (mcnn_safetensors_open(&st, tmp) != MCNN_OK) continue;
        opened++;
        for (int i = 0; i < mcnn_safetensors_count(st); i++) {
            const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
            float *buf = malloc((t->numel ? t->numel : 1) * sizeof *buf);
            mcnn_safetensors_read_f32(st, t, buf);
            free(buf);
        }
        mcnn_safetensors_close(st);
    }
    if (prefixes) TEST_ASSERT(opened == 0, "%s: %d truncated copies opened", file, opened);
    unlink(tmp);
    free(data);
}

static void test_truncated_and_flipped(void)
{
    mutate("state_dict.pt", 1);
    mutate("legacy.pt", 1);
    mutate("legacy.pt", 0);
    mutate("views.pt", 0);
}

/* mcnn-convert: the archive to safetensors, tensor for tensor; an existing output kept. */
static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_convert_app(void)
{
    const char *b = getenv("MCNN_BUILD");
    char app[256], out[64], cmd[1024];
    snprintf(app, sizeof app, "%s/mcnn-convert", b && *b ? b : "build");
    if (access(app, X_OK) != 0) {
        TEST_ASSERT(0, "%s not found: build it first", app);
        return;
    }
    snprintf(out, sizeof out, "/tmp/mcnn_torch_convert_%d.safetensors", (int)getpid());
    unlink(out);
    snprintf(cmd, sizeof cmd, "%s " DIR "views.pt %s >/dev/null", app, out);
    TEST_ASSERT(run(cmd) == 0, "convert: %s", cmd);
    mcnn_safetensors *a = NULL, *c = NULL;
    TEST_OK(mcnn_safetensors_open(&a, DIR "views.pt"));
    TEST_OK(mcnn_safetensors_open(&c, out));
    if (a && c) {
        TEST_ASSERT(mcnn_safetensors_format(c) == MCNN_FORMAT_SAFETENSORS, "safetensors written");
        TEST_ASSERT(mcnn_safetensors_count(a) == mcnn_safetensors_count(c), "same count");
        for (int i = 0; i < mcnn_safetensors_count(a); i++) {
            const mcnn_st_tensor *t = mcnn_safetensors_at(a, i), *u = mcnn_safetensors_find(c, t->name);
            TEST_ASSERT(u && u->nbytes == t->nbytes && u->dtype == t->dtype, "'%s' written", t->name);
            if (!u || u->nbytes != t->nbytes) continue;
            unsigned char *x = read_raw(a, t), *y = read_raw(c, u);
            TEST_ASSERT(x && y && memcmp(x, y, t->nbytes) == 0, "'%s' bytes", t->name);
            free(x), free(y);
        }
    }
    mcnn_safetensors_close(a);
    mcnn_safetensors_close(c);
    snprintf(cmd, sizeof cmd, "%s " DIR "views.pt %s 2>/dev/null", app, out);
    TEST_ASSERT(run(cmd) == 1, "an existing output is not replaced without --force");
    snprintf(cmd, sizeof cmd, "%s --force " DIR "evil_os_system.pt %s 2>/dev/null", app, out);
    TEST_ASSERT(run(cmd) == 1, "a hostile input fails");
    TEST_OK(mcnn_safetensors_open(&c, out)); /* and the previous output is intact */
    mcnn_safetensors_close(c);
    snprintf(cmd, sizeof cmd, "%s --help >/dev/null && %s 2>/dev/null; test $? = 2", app, app);
    TEST_ASSERT(run(cmd) == 0, "--help exits 0, no arguments 2");
    unlink(out);
}

/* ---- make test-full: the published files' full-size layout ------------------------------------
 * OpenAI's TorchScript CLIP archives (tests/ref/gen_full_clip.py: ViT-B/32, ViT-L/14 and
 * ViT-L/14@336px with clip/model.py's architecture, its dtypes, torch.jit.save) and
 * torchvision's state dicts (tests/ref/gen_full_size.py: resnet50.pth, vit_b_16.pth), read as
 * they are and run against PyTorch's float64 forward. */

static const char *full_path(char *buf, size_t n, const char *file)
{
    const char *dir = getenv("MCNN_FULL_DIR");
    snprintf(buf, n, "%s/%s", dir && *dir ? dir : "build/full", file);
    return buf;
}

static const char *app_path(char *buf, size_t n, const char *app)
{
    const char *b = getenv("MCNN_BUILD");
    snprintf(buf, n, "%s/%s", b && *b ? b : "build", app);
    return buf;
}

/* Within 1e-3 of PyTorch relative to the largest value, every row's cosine above 0.99999;
 * prints the largest |got - want|, the relative error and the smallest cosine's distance from 1. */
static void report_rows(const char *what, const float *got, const float *want, int rows, int D)
{
    double maxabs = 0, mincos = 1;
    for (int r = 0; r < rows; r++) {
        double gw = 0, gg = 0, ww = 0;
        for (int i = 0; i < D; i++) {
            double g = got[r * D + i], w = want[r * D + i];
            if (!(fabs(g - w) <= maxabs)) maxabs = fabs(g - w);
            gw += g * w, gg += g * g, ww += w * w;
        }
        double c = gw / sqrt(gg * ww);
        if (!(c >= mincos)) mincos = c;
    }
    printf("  %s: max abs diff %.3g, relative %.3g, 1 - cosine at most %.2g (against PyTorch "
           "float64)\n", what, maxabs, test_close_rel(what, got, want, (size_t)rows * D, 1e-3), 1 - mincos);
    TEST_ASSERT(mincos > 0.99999, "%s: cosine %.9f", what, mincos);
}

static void check_full_clip(const char *name, int width, int layers, int size, int embed)
{
    char pt[1024], refpath[1024], st[1024], file[256], conv[1024], cmd[3200];
    snprintf(file, sizeof file, "%s.pt", name);
    full_path(pt, sizeof pt, file);
    snprintf(file, sizeof file, "%s.ref.safetensors", name);
    full_path(refpath, sizeof refpath, file);
    mcnn_safetensors *ref = NULL;
    if (mcnn_safetensors_open(&ref, refpath) != MCNN_OK) {
        TEST_SKIP("%s is absent (run tests/ref/gen_full_clip.py, or make test-full)", refpath);
        return;
    }
    mcnn_clip *m = NULL, *c = NULL;
    double t0 = mcnn_seconds();
    TEST_OK(mcnn_clip_load(&m, pt, NULL)); /* the archive as published: no options */
    double load_s = mcnn_seconds() - t0;
    float *images = test_golden(ref, "images", NULL), *want_i = test_golden(ref, "image_features", NULL),
          *want_t = test_golden(ref, "text_features", NULL);
    int32_t *tokens = test_golden_i32(ref, "tokens", NULL);
    float *got_i = malloc(2 * embed * sizeof(float)), *got_t = malloc(2 * embed * sizeof(float));
    float *again = malloc(2 * embed * sizeof(float));
    if (!m || !images || !want_i || !want_t || !tokens) goto done;
    const mcnn_clip_config *cfg = mcnn_clip_get_config(m);
    TEST_ASSERT(cfg->vision_width == width && cfg->vision_layers == layers &&
                cfg->vision_heads == width / 64 && cfg->image_size == size &&
                cfg->embed_dim == embed && cfg->context_length == 77 && cfg->vocab_size == 49408,
                "%s: config read from the archive", name);
    printf("  %s: loaded in %.2f s\n", name, load_s);
    TEST_OK(mcnn_clip_encode_image(m, got_i, images, 2));
    TEST_OK(mcnn_clip_encode_text(m, got_t, tokens, 2));
    snprintf(cmd, sizeof cmd, "%s encode_image", name);
    report_rows(cmd, got_i, want_i, 2, embed);
    snprintf(cmd, sizeof cmd, "%s encode_text", name);
    report_rows(cmd, got_t, want_t, 2, embed);
    /* mcnn-convert's safetensors gives the same model, bit for bit */
    snprintf(file, sizeof file, "%s.safetensors", name);
    full_path(st, sizeof st, file);
    snprintf(cmd, sizeof cmd, "%s --force %s %s >/dev/null", app_path(conv, sizeof conv, "mcnn-convert"),
             pt, st);
    TEST_ASSERT(run(cmd) == 0, "%s", cmd);
    TEST_OK(mcnn_clip_load(&c, st, NULL));
    if (c) {
        TEST_OK(mcnn_clip_encode_image(c, again, images, 2));
        TEST_ASSERT(memcmp(again, got_i, 2 * embed * sizeof(float)) == 0, "%s: converted, same image bits", name);
        TEST_OK(mcnn_clip_encode_text(c, again, tokens, 2));
        TEST_ASSERT(memcmp(again, got_t, 2 * embed * sizeof(float)) == 0, "%s: converted, same text bits", name);
    }
done:
    free(images), free(want_i), free(want_t), free(tokens), free(got_i), free(got_t), free(again);
    mcnn_clip_free(m);
    mcnn_clip_free(c);
    mcnn_safetensors_close(ref);
}

static void test_openai_clip_b32_full_size(void) { check_full_clip("ViT-B-32", 768, 12, 224, 512); }
static void test_openai_clip_l14_full_size(void) { check_full_clip("ViT-L-14", 1024, 24, 224, 768); }
static void test_openai_clip_l14_336_full_size(void)
{
    check_full_clip("ViT-L-14-336px", 1024, 24, 336, 768);
}

/* torchvision's .pth layout at full size, through the loaders and through mcnn-classify
 * --model, as a user would point it at resnet50-0676ba61.pth or vit_b_16-c867db91.pth; and
 * mcnn-classify --model ViT-B-32.pt, OpenAI's archive unchanged. */
static void test_published_layouts_in_classify(void)
{
    char refpath[1024], path[1024], app[1024], cmd[5200];
    mcnn_safetensors *ref = NULL;
    if (mcnn_safetensors_open(&ref, full_path(refpath, sizeof refpath, "full_size_ref.safetensors")) != MCNN_OK) {
        TEST_SKIP("%s is absent (run tests/ref/gen_full_size.py, or make test-full)", refpath);
        return;
    }
    float *x = test_golden(ref, "images", NULL), *logits = malloc(2 * 1000 * sizeof(float));
    float *want_r = test_golden(ref, "resnet50.logits", NULL), *want_v = test_golden(ref, "vit_b_16.logits", NULL);
    mcnn_resnet *r = NULL;
    TEST_OK(mcnn_resnet_load(&r, full_path(path, sizeof path, "resnet50.pth"), NULL));
    if (r && x && want_r) {
        TEST_OK(mcnn_resnet_forward(r, logits, x, 2, 224, 224, MCNN_RESNET_EVAL));
        test_close_rel("resnet50.pth logits", logits, want_r, 2000, 1e-3);
    }
    mcnn_resnet_free(r);
    mcnn_vit *v = NULL;
    TEST_OK(mcnn_vit_load(&v, full_path(path, sizeof path, "vit_b_16.pth"), NULL));
    if (v && x && want_v) {
        TEST_OK(mcnn_vit_forward(v, logits, x, 2, 0));
        test_close_rel("vit_b_16.pth logits", logits, want_v, 2000, 1e-3);
    }
    mcnn_vit_free(v);
    free(x), free(logits), free(want_r), free(want_v);
    mcnn_safetensors_close(ref);
    app_path(app, sizeof app, "mcnn-classify");
    const char *files[] = {"resnet50.pth", "vit_b_16.pth"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "%s --model %s -k 1 weights/samples/0000-ankle-boot.png | grep -q '0000-ankle-boot'",
                 app, full_path(path, sizeof path, files[i]));
        TEST_ASSERT(run(cmd) == 0, "%s", cmd);
    }
    if (access(full_path(path, sizeof path, "ViT-B-32.pt"), R_OK) == 0) {
        char vocab[1024], labels[1024];
        snprintf(vocab, sizeof vocab, "%s", test_shared_path("data/clip/bpe_simple_vocab_16e6.txt.gz"));
        snprintf(labels, sizeof labels, "%s", test_shared_path("data/movieclip/taxonomy-179.txt"));
        snprintf(cmd, sizeof cmd, "%s --model %s --vocab %s --labels %s --no-cache -k 1 "
                 "weights/samples/0000-ankle-boot.png | grep -q '0000-ankle-boot'", app, path, vocab, labels);
        TEST_ASSERT(run(cmd) == 0, "%s", cmd);
    }
}

int main(void)
{
    TEST_RUN(test_state_dict_zip);
    TEST_RUN(test_state_dict_legacy);
    TEST_RUN(test_pickle_protocol_4);
    TEST_RUN(test_dtypes);
    TEST_RUN(test_views_and_shared_storages);
    TEST_RUN(test_deflated_archive);
    TEST_RUN(test_zip64_archive);
    TEST_RUN(test_checkpoint_unwrapped);
    TEST_RUN(test_torchscript_names);
    TEST_RUN(test_scripted_module);
    TEST_RUN(test_read_f32_of_views);
    TEST_RUN(test_clip_from_torchscript);
    TEST_RUN(test_torchvision_models);
    TEST_RUN(test_hostile_files_refused);
    TEST_RUN(test_truncated_and_flipped);
    TEST_RUN(test_convert_app);
    if (getenv("MCNN_TEST_FULL")) {
        TEST_RUN(test_published_layouts_in_classify);
        TEST_RUN(test_openai_clip_b32_full_size);
        TEST_RUN(test_openai_clip_l14_full_size);
        TEST_RUN(test_openai_clip_l14_336_full_size);
    }
    return test_summary();
}
