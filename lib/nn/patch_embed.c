/* Patch embedding, forward above backward; the steps are numbered in patch_embed.h. */
#include "patch_embed.h"

#include <string.h>

static int patches_of(const patch_embed_cfg *cfg)
{
    return (cfg->H / cfg->PS) * (cfg->H / cfg->PS);
}

void mcnn_patch_embed_carve(patch_embed_acts *a, mcnn_carver *c, const patch_embed_cfg *cfg,
                            int B, int train)
{
    const size_t P = (size_t)patches_of(cfg), T = 1 + P, C = cfg->C;
    const size_t PD = (size_t)cfg->IC * cfg->PS * cfg->PS;
    a->patches = mcnn_carve(c, B * P * PD);
    a->tok = mcnn_carve(c, B * P * C);
    a->x0 = mcnn_carve(c, B * T * C);
    a->x = mcnn_carve(c, B * T * C);
    a->dtok = train ? mcnn_carve(c, B * P * C) : NULL;
}

void mcnn_patch_embed_forward(const patch_embed_acts *a, const patch_embed_params *p,
                              const patch_embed_cfg *cfg, const float *images, int b0, int n)
{
    const int C = cfg->C, P = patches_of(cfg), T = 1 + P, IC = cfg->IC, H = cfg->H;
    const int PS = cfg->PS, PD = IC * PS * PS;
    const size_t b = (size_t)b0, TC = (size_t)T * C;
    float *patches = a->patches + b * P * PD, *tok = a->tok + b * P * C;
    float *x0 = a->x0 + b * TC, *x = a->x + b * TC;
    mcnn_patchify_forward(patches, images + b * IC * H * H, n, IC, H, H, PS);     /* 1 */
    mcnn_linear_forward(tok, patches, p->w, p->b, n * P, PD, C);                  /* 2 */
    mcnn_class_token_forward(x0, tok, p->cls, n, P, C);                           /* 3 */
    mcnn_add_positional_forward(x, x0, p->pos, n, T, C);                          /* 4 */
}

void mcnn_patch_embed_backward(const patch_embed_params *g, const patch_embed_acts *a,
                               const float *dx, const patch_embed_params *p,
                               const patch_embed_cfg *cfg, int B)
{
    const int C = cfg->C, P = patches_of(cfg), T = 1 + P;
    const int PD = cfg->IC * cfg->PS * cfg->PS;
    mcnn_add_positional_backward(NULL, g->pos, dx, B, T, C);                      /* 4 */
    memset(a->dtok, 0, (size_t)B * P * C * sizeof(float));        /* dx0 is dx */
    mcnn_class_token_backward(a->dtok, g->cls, dx, B, P, C);                      /* 3 */
    mcnn_linear_backward(NULL, g->w, g->b, a->dtok, a->patches, p->w, B * P, PD, C); /* 2 */
}
