/* docs/examples/tiny_vit.c, the learner's single-file ViT, against two judges: the library's
 * ViT given the same weights and images (every parameter gradient, rel 1e-4), and central
 * finite differences of its own loss (mcnn_gradcheck).  Its main() is left out; the test reads
 * its model straight from the file, so the example cannot drift from what is tested. */
#define TINY_VIT_NO_MAIN
#include "../docs/examples/tiny_vit.c"

#include "mcnn_test.h"

enum { B = 3 };
static const TinyConfig tiny_cfg = {.image = 12, .patch = 4, .channels = 1, .width = 16,
                                    .heads = 2, .layers = 2, .mlp = 24, .classes = 5,
                                    .eps = 1e-6f};
static const int labels[B] = {0, 3, 4};

/* The library's ViT of the same shape, every parameter moved off its initial value (norms away
 * from 1 and 0, a non-zero class token) so that no gradient is trivially zero. */
static mcnn_vit *library_vit(void)
{
    const mcnn_vit_config vc = {.image_size = tiny_cfg.image, .patch_size = tiny_cfg.patch,
                                .in_channels = tiny_cfg.channels, .width = tiny_cfg.width,
                                .layers = tiny_cfg.layers, .heads = tiny_cfg.heads,
                                .mlp_dim = tiny_cfg.mlp, .num_classes = tiny_cfg.classes,
                                .ln_eps = tiny_cfg.eps};
    mcnn_vit *v = NULL;
    if (mcnn_vit_create(&v, &vc, 11) != MCNN_OK) return NULL;
    mcnn_params *p = mcnn_vit_params(v);
    float *noise = malloc(p->total * sizeof(float));
    test_fill_random(noise, p->total, 5);
    for (size_t i = 0; i < p->total; i++) p->data[i] += 0.3f * noise[i];
    free(noise);
    return v;
}

static void test_gradients_match_the_library(void)
{
    mcnn_vit *lib = library_vit();
    TinyViT tiny;
    TEST_ASSERT(lib != NULL, "mcnn_vit_create: %s", mcnn_last_error());
    TEST_ASSERT(tiny_vit_build(&tiny, &tiny_cfg, B) == 0, "tiny_vit_build failed");
    if (!lib || test_current_failed) return;
    mcnn_params *p = mcnn_vit_params(lib);
    /* the same parameters in the same order: the tiny model's block is the table's rows one
     * after another (the library pads each row to 64 bytes) */
    size_t *at = malloc((size_t)p->count * sizeof *at), n = 0;
    for (int r = 0; r < p->count; r++) at[r] = n, n += p->table[r].numel;
    TEST_ASSERT(tiny.num_params == n, "tiny ViT has %zu parameters, the library %zu",
                tiny.num_params, n);
    TEST_ASSERT(tiny.params.head_b == tiny.param_block + at[p->count - 1],
                "the head bias is at another place");
    if (test_current_failed) return;
    for (int r = 0; r < p->count; r++)
        memcpy(tiny.param_block + at[r], p->data + p->table[r].offset,
               p->table[r].numel * sizeof(float));

    const size_t npix = (size_t)B * tiny_cfg.image * tiny_cfg.image;
    float images[B * 12 * 12], logits[B * 5];
    test_fill_random(images, npix, 9);
    tiny_vit_forward(&tiny, images, labels, B);
    tiny_vit_zero_grad(&tiny);
    tiny_vit_backward(&tiny);

    mcnn_params_zero_grad(p);
    TEST_OK(mcnn_vit_forward(lib, logits, images, B, 1));
    for (int i = 0; i < B * tiny_cfg.classes; i++)
        TEST_CLOSE("logits", tiny.acts.logits[i], logits[i], 1e-4, 1e-6);
    /* the same upstream gradient (tiny's softmax cross-entropy) into both backwards */
    TEST_OK(mcnn_vit_backward(lib, tiny.dacts.logits));

    double worst = 0.0;
    const char *worst_name = "";
    for (int r = 0; r < p->count; r++) {
        const mcnn_param *row = &p->table[r];
        const float *want = p->grad + row->offset, *got = tiny.grad_block + at[r];
        double scale = 0.0, diff = 0.0;
        for (size_t i = 0; i < row->numel; i++) {
            scale = fmax(scale, fabs(want[i]));
            diff = fmax(diff, fabs(got[i] - want[i]));
        }
        TEST_ASSERT(scale > 0.0, "%s: the library's gradient is all zero", row->name);
        /* rel 1e-4 of the tensor's largest gradient: elements near zero carry rounding only */
        for (size_t i = 0; i < row->numel; i++)
            TEST_CLOSE(row->name, got[i], want[i], 1e-4, 1e-4 * scale);
        if (scale > 0 && diff / scale > worst) worst = diff / scale, worst_name = row->name;
    }
    fprintf(stderr, "  worst gradient difference %.2e of the tensor's largest (%s)\n", worst,
            worst_name);
    free(at);
    tiny_vit_free(&tiny);
    mcnn_vit_free(lib);
}

/* The mean cross-entropy of the fixed batch as a function of all parameters, for the checker. */
typedef struct loss_ctx {
    TinyViT *m;
    const float *images;
} loss_ctx;

static double tiny_loss(const float *x, void *ctx)
{
    loss_ctx *c = ctx;
    (void)x; /* x is c->m->param_block itself, moved in place by the checker */
    return tiny_vit_forward(c->m, c->images, labels, B);
}

static void test_gradients_match_finite_differences(void)
{
    TinyViT tiny;
    TEST_ASSERT(tiny_vit_build(&tiny, &tiny_cfg, B) == 0, "tiny_vit_build failed");
    if (test_current_failed) return;
    float *noise = malloc(tiny.num_params * sizeof(float));
    test_fill_random(noise, tiny.num_params, 3);
    for (size_t i = 0; i < tiny.num_params; i++) tiny.param_block[i] += 0.3f * noise[i];
    float images[B * 12 * 12];
    test_fill_random(images, (size_t)B * 12 * 12, 4);
    tiny_vit_forward(&tiny, images, labels, B);
    tiny_vit_zero_grad(&tiny);
    tiny_vit_backward(&tiny);
    float *grad = malloc(tiny.num_params * sizeof(float));
    memcpy(grad, tiny.grad_block, tiny.num_params * sizeof(float));

    loss_ctx ctx = {&tiny, images};
    mcnn_gradcheck_report r;
    /* float forward: steps of 1e-2 and errors within 1e-2 of gradients of 1e-2 or more */
    const mcnn_gradcheck_options opt = {.step = 1e-2, .floor = 1e-2};
    TEST_OK(mcnn_gradcheck(&r, tiny_loss, &ctx, tiny.param_block, grad, tiny.num_params, &opt));
    fprintf(stderr, "  %zu parameters: worst relative error %.2e at %zu (%g vs %g)\n", r.checked,
            r.max_error, r.worst, r.analytic, r.numeric);
    TEST_ASSERT(r.checked == tiny.num_params, "checked %zu of %zu", r.checked, tiny.num_params);
    TEST_ASSERT(r.max_error < 1e-2, "the worst gradient is %g, finite differences say %g",
                r.analytic, r.numeric);
    free(grad);
    free(noise);
    tiny_vit_free(&tiny);
}

int main(void)
{
    mcnn_set_threads(2);
    TEST_RUN(test_gradients_match_the_library);
    TEST_RUN(test_gradients_match_finite_differences);
    return test_summary();
}
