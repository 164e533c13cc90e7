/* Weights packed once, and the GEMM that reads them: y = x · Wᵀ (+ bias) + beta · y in fp32,
 * bf16 or int8 (include/mcnn/lowp.h, docs/precision.md).
 *
 * mcnn_gemm packs its B operand again on every call; for a weight that never changes, that
 * copy is paid once here instead, in the layout the chosen micro-kernel reads:
 *
 *   fp32, bf16  K cut into the same even blocks as mcnn_gemm (kc_blk); block by block, the
 *               NR-wide panels of every column, each kc x NR, k-major (gemm_pack.c's layout):
 *                 panels + pc * Npad + q * kc * NR      (block starting at k = pc, panel q)
 *               fp32 stores floats, bf16 their rounded top halves.  A bf16 kernel that sums
 *               k in pairs (kgroup 2, vdpbf16ps) keeps the K blocks even and stores each
 *               panel pair-major: per pair of k, per column, the two bf16 side by side (an
 *               odd K's last pair padded with 0), so block and panel offsets count the
 *               padded kc:  panels + pc * Npad + q * round_up(kc, 2) * NR  (uint16s).
 *   int8        the whole K in one block, k in groups of 4 (K padded to a multiple of 4):
 *                 panels + q * kq * 4NR  bytes, then per group g: (w[4g..4g+3][j]), j < NR
 *               plus per output column its scale and the sum of its quantized weights.
 *
 * The loops are mcnn_gemm's (gemm.c) without the B packing: for an N block, for a K block, for
 * an M block (A packed, and for bf16 rounded, in pairs for a pair kernel), for each B panel,
 * for each A panel: one micro-kernel call.  int8 quantizes x's rows once per call instead, and its kernel reads
 * them in place and finishes its tile itself (lowp_int8.c).  fp32 uses the same micro-kernel, the same K blocks and
 * the same write-back as mcnn_gemm, and adds the bias afterwards as mcnn_linear_forward does,
 * so it gives the same bits.  Threads take rectangles of whole tiles; a tile is computed the
 * same way by any thread, so the bits do not depend on the thread count.
 *
 * This file is ISO C without FMA contraction: the int8 epilogue must round as its definition
 * (lowp_internal.h) does. */
#include "lowp_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#define HAVE_X86 1
#endif

struct mcnn_packed_b {
    mcnn_precision precision;
    int N, K;
    const mcnn_gemm_kernel *f32;   /* fp32: the kernel (mcnn_gemm's unless MCNN_ISA says) */
    const mcnn_lowp_kernel *lowp;  /* bf16, int8 */
    int mr, nr, kc_blk, mc, nc;    /* the kernel's tile and blocks */
    int npad, kq;                  /* N rounded up to NR; int8: groups of 4 k */
    int kgroup;                    /* bf16: k per fp32 lane, 1 or 2 (the pair kernel) */
    void *panels;
    size_t panel_bytes;
    float *scales;                 /* int8: per output column */
    int32_t *qsums;                /* int8: per output column, Σ_k q[j][k] */
};

const char *mcnn_precision_name(mcnn_precision p)
{
    return p == MCNN_PRECISION_BF16 ? "bf16" : p == MCNN_PRECISION_INT8 ? "int8" : "fp32";
}

mcnn_status mcnn_precision_parse(const char *name, mcnn_precision *out)
{
    const mcnn_precision all[] = {MCNN_PRECISION_FP32, MCNN_PRECISION_BF16, MCNN_PRECISION_INT8};
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, mcnn_precision_name(all[i])) == 0) return *out = all[i], MCNN_OK;
    return mcnn_set_error(MCNN_ERR_ARG, "precision '%s': use fp32, bf16 or int8",
                          name ? name : "(null)");
}

/* ---- which kernels ---------------------------------------------------------------------------- */
static const char *const level_names[] = {"plain", "avx2", "avx512", "amx"};
static _Atomic(const char *) isa_override; /* mcnn_lowp_set_isa; NULL: the environment */

int mcnn_lowp_cpu_level(void)
{
#ifdef HAVE_X86
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    if (!__builtin_cpu_supports("avx512f")) return 1;
    unsigned a, b, c, d; /* CPUID leaf 7: EDX bit 24 is AMX-TILE */
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1u)) return 3;
    return 2;
#else
    return 0;
#endif
}

void mcnn_lowp_set_isa(const char *name)
{
    atomic_store(&isa_override, name);
}

/* The requested level (-1: none requested), or an error naming what this CPU has. */
static mcnn_status requested_level(int *level)
{
    const char *name = atomic_load(&isa_override);
    if (!name) name = getenv("MCNN_ISA");
    *level = -1;
    if (!name || !name[0]) return MCNN_OK;
    int cpu = mcnn_lowp_cpu_level();
    for (int l = 0; l < 4; l++) {
        if (strcmp(name, level_names[l]) != 0) continue;
        if (l > cpu)
            return mcnn_set_error(MCNN_ERR_ARG,
                                  "MCNN_ISA=%s: this CPU lacks it; it runs plain up to %s",
                                  name, level_names[cpu]);
        *level = l;
        return MCNN_OK;
    }
    return mcnn_set_error(MCNN_ERR_ARG,
                          "MCNN_ISA=%s: unknown; use plain, avx2, avx512 or amx (or unset it "
                          "for the best this CPU has, here %s)", name, level_names[cpu]);
}

mcnn_status mcnn_lowp_isa(int *level)
{
    MCNN_TRY(requested_level(level));
    if (*level < 0) *level = mcnn_lowp_cpu_level();
    return MCNN_OK;
}

/* fp32: mcnn_gemm's own kernel unless a level was requested. */
static mcnn_status pick_fp32(const mcnn_gemm_kernel **out)
{
    int level;
    MCNN_TRY(requested_level(&level));
    if (level < 0) {
        *out = mcnn_gemm_current_kernel();
        return MCNN_OK;
    }
    const char *want = level >= 2 ? "avx512" : level == 1 ? "avx2" : "plain";
    for (const mcnn_gemm_kernel *k = mcnn_gemm_kernels; k->fn; k++)
        if (strcmp(k->name, want) == 0 && mcnn_gemm_kernel_supported(k)) return *out = k, MCNN_OK;
    *out = mcnn_gemm_pick_micro_kernel(1); /* a build without vector kernels */
    return MCNN_OK;
}

int mcnn_lowp_kernel_usable(const mcnn_lowp_kernel *k, int level)
{
    return k->level <= level && (!k->usable || k->usable());
}

/* The first kernel of the table for this precision that runs here. */
static mcnn_status pick_lowp(mcnn_precision precision, const mcnn_lowp_kernel **out)
{
    int level;
    MCNN_TRY(mcnn_lowp_isa(&level));
    for (const mcnn_lowp_kernel *k = mcnn_lowp_kernels; k->name; k++) {
        int has = precision == MCNN_PRECISION_BF16 ? k->bf16 || k->bf16x2 : k->int8 != NULL;
        if (has && mcnn_lowp_kernel_usable(k, level)) return *out = k, MCNN_OK;
    }
    return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "no %s kernel in this build",
                          mcnn_precision_name(precision));
}

/* ---- packing the weight ----------------------------------------------------------------------- */
static int ceil_div(int a, int b) { return (a + b - 1) / b; }
static int round_up(int a, int b) { return ceil_div(a, b) * b; }
static int min_int(int a, int b) { return a < b ? a : b; }

/* fp32 and bf16: every K block's panels, as mcnn_gemm_pack_b would make them. */
static mcnn_status pack_float_panels(mcnn_packed_b *p, const float *W, int ldw)
{
    int panels = p->npad / p->nr, vec = p->f32 && p->f32->isa[0] != '\0';
    float *tmp = NULL;
    if (p->precision == MCNN_PRECISION_BF16) {
        tmp = mcnn_alloc((size_t)p->kc_blk * p->npad * sizeof(float));
        if (!tmp) return mcnn_set_error(MCNN_ERR_NOMEM, "packing a bf16 weight");
    }
    for (int pc = 0; pc < p->K; pc += p->kc_blk) {
        int kc = min_int(p->kc_blk, p->K - pc);
        size_t off = (size_t)pc * p->npad, n = (size_t)kc * p->npad;
        if (!tmp) {
            mcnn_gemm_pack_b(1, W, ldw, pc, kc, 0, p->N, p->nr, 0, panels,
                             (float *)p->panels + off, vec);
            continue;
        }
        mcnn_gemm_pack_b(1, W, ldw, pc, kc, 0, p->N, p->nr, 0, panels, tmp, 0);
        uint16_t *dst = (uint16_t *)p->panels + off;
        if (p->kgroup == 1) {
            for (size_t i = 0; i < n; i++) dst[i] = mcnn_bf16_from_float(tmp[i]);
            continue;
        }
        /* pairs: panel q's word (p, j) holds k = 2p and 2p + 1 of column j */
        const int NR = p->nr, kcp = round_up(kc, 2);
        for (int q = 0; q < panels; q++) {
            const float *src = tmp + (size_t)q * kc * NR;
            uint16_t *d = dst + (size_t)q * kcp * NR;
            for (int k = 0; k < kcp; k++)
                for (int j = 0; j < NR; j++)
                    d[((size_t)(k / 2) * NR + j) * 2 + k % 2] =
                        k < kc ? mcnn_bf16_from_float(src[(size_t)k * NR + j]) : 0;
        }
    }
    mcnn_free(tmp);
    return MCNN_OK;
}

/* int8: quantize each row (output column), then lay the groups out panel by panel. */
static mcnn_status pack_int8_panels(mcnn_packed_b *p, const float *W, int ldw)
{
    int8_t *q = mcnn_alloc((size_t)p->N * p->K);
    if (!q) return mcnn_set_error(MCNN_ERR_NOMEM, "packing an int8 weight");
    for (int j = 0; j < p->N; j++)
        p->scales[j] = mcnn_quant_weight_row(W + (size_t)j * ldw, p->K, q + (size_t)j * p->K,
                                             &p->qsums[j]);
    int8_t *dst = p->panels;
    const int NR = p->nr;
    for (int qp = 0; qp < p->npad / NR; qp++)
        for (int g = 0; g < p->kq; g++)
            for (int j = 0; j < NR; j++)
                for (int t = 0; t < MCNN_INT8_KGROUP; t++) {
                    int col = qp * NR + j, k = MCNN_INT8_KGROUP * g + t;
                    *dst++ = col < p->N && k < p->K ? q[(size_t)col * p->K + k] : 0;
                }
    mcnn_free(q);
    return MCNN_OK;
}

mcnn_status mcnn_packed_b_create(mcnn_packed_b **out, mcnn_precision precision, const float *W,
                                 int N, int K, int ldw)
{
    *out = NULL;
    if (N <= 0 || K <= 0 || ldw < K || !W)
        return mcnn_set_error(MCNN_ERR_ARG, "packed weight: N = %d, K = %d, ldw = %d", N, K, ldw);
    /* int8 sums: |Σ q_x q_w| <= K * 255 * 127 (8-bit activations; 127 * 127 with 7) must fit
     * an int32, and so the epilogue's: K <= 66,311, kept at 65536 */
    if (precision == MCNN_PRECISION_INT8 && K > 65536)
        return mcnn_set_error(MCNN_ERR_ARG, "int8 packed weight: K = %d > 65536", K);
    mcnn_packed_b *p = calloc(1, sizeof *p);
    if (!p) return mcnn_set_error(MCNN_ERR_NOMEM, "packed weight");
    p->precision = precision, p->N = N, p->K = K;
    mcnn_status s = MCNN_OK;
    if (precision == MCNN_PRECISION_FP32) {
        s = pick_fp32(&p->f32);
        if (s == MCNN_OK) {
            const mcnn_gemm_kernel *k = p->f32;
            p->mr = k->mr, p->nr = k->nr, p->kc_blk = ceil_div(K, ceil_div(K, k->kc));
            p->mc = k->mc, p->nc = k->nc;
        }
    } else if (precision == MCNN_PRECISION_BF16 || precision == MCNN_PRECISION_INT8) {
        s = pick_lowp(precision, &p->lowp);
        if (s == MCNN_OK) {
            const mcnn_lowp_kernel *k = p->lowp;
            p->mr = precision == MCNN_PRECISION_INT8 ? k->mr8 : k->mr;
            p->nr = k->nr, p->mc = k->mc, p->nc = k->nc;
            p->kgroup = precision == MCNN_PRECISION_BF16 && k->bf16x2 ? 2 : 1;
            p->kc_blk = precision == MCNN_PRECISION_BF16
                            ? round_up(ceil_div(K, ceil_div(K, k->kc)), p->kgroup)
                            : K;
        }
    } else {
        s = mcnn_set_error(MCNN_ERR_ARG, "packed weight: unknown precision %d", (int)precision);
    }
    if (s != MCNN_OK) {
        free(p);
        return s;
    }
    p->npad = round_up(N, p->nr), p->kq = ceil_div(K, MCNN_INT8_KGROUP);
    if (!p->kgroup) p->kgroup = 1;
    size_t elems = (size_t)p->npad * (size_t)(precision == MCNN_PRECISION_INT8
                                                  ? MCNN_INT8_KGROUP * p->kq
                                                  : round_up(K, p->kgroup));
    p->panel_bytes = elems * (precision == MCNN_PRECISION_FP32   ? sizeof(float)
                              : precision == MCNN_PRECISION_BF16 ? sizeof(uint16_t)
                                                                 : sizeof(int8_t));
    p->panels = mcnn_alloc(p->panel_bytes);
    if (precision == MCNN_PRECISION_INT8) {
        p->scales = mcnn_alloc((size_t)N * sizeof(float));
        p->qsums = mcnn_alloc((size_t)N * sizeof(int32_t));
    }
    if (!p->panels || (precision == MCNN_PRECISION_INT8 && (!p->scales || !p->qsums)))
        s = mcnn_set_error(MCNN_ERR_NOMEM, "packed weight (%d x %d)", N, K);
    else
        s = precision == MCNN_PRECISION_INT8 ? pack_int8_panels(p, W, ldw)
                                             : pack_float_panels(p, W, ldw);
    if (s != MCNN_OK) {
        mcnn_packed_b_free(p);
        return s;
    }
    *out = p;
    return MCNN_OK;
}

void mcnn_packed_b_free(mcnn_packed_b *p)
{
    if (!p) return;
    mcnn_free(p->panels);
    mcnn_free(p->scales);
    mcnn_free(p->qsums);
    free(p);
}

size_t mcnn_packed_b_bytes(const mcnn_packed_b *p)
{
    size_t extra = p->precision == MCNN_PRECISION_INT8 ? (size_t)p->N * 8 : 0;
    return p->panel_bytes + extra;
}

const char *mcnn_packed_b_kernel(const mcnn_packed_b *p)
{
    return p->f32 ? p->f32->name : p->lowp->name;
}

const mcnn_lowp_kernel *mcnn_packed_b_pair_kernel(const mcnn_packed_b *p)
{
    return p && p->kgroup == 2 ? p->lowp : NULL;
}

/* ---- the multiply ----------------------------------------------------------------------------- */
typedef struct packed_call {
    const mcnn_packed_b *p;
    int M, lda, ldc;
    const float *x, *bias;
    float beta;
    float *y;
    const uint8_t *qx;     /* int8: x quantized, (M, 4 kq), zero-padded */
    const float *sx;       /* int8: per row scale */
    const int32_t *zx;     /* int8: per row zero point */
    int trans_x, trans_y;  /* x given as xᵀ (K, M), y written as yᵀ (N, M) */
} packed_call;

/* Where y[i][j] is: row-major, or transposed (yᵀ (N, M), row stride ldc). */
static float *y_at(const packed_call *g, int i, int j)
{
    return g->trans_y ? g->y + (size_t)j * g->ldc + i : g->y + (size_t)i * g->ldc + j;
}

/* A bf16 or int8 kernel writes its tile row-major only: for a transposed y it writes t
 * (m, n; row stride NR) instead, filled from y first when the kernel reads y (beta != 0), and
 * t is copied out after.  The same operations on the same values: the same bits. */
enum { TILE_MAX = 32 * 32 };
static void tile_in(const packed_call *g, float *t, int nr, int i0, int j0, int m, int n,
                    float beta)
{
    if (beta != 0.0f)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) t[i * nr + j] = *y_at(g, i0 + i, j0 + j);
}
static void tile_out(const packed_call *g, const float *t, int nr, int i0, int j0, int m, int n)
{
    for (int j = 0; j < n; j++) {
        float *yj = y_at(g, i0, j0 + j);
        for (int i = 0; i < m; i++) yj[i] = t[i * nr + j];
    }
}

/* fp32 / bf16 on y[i0 : i0+m, j0 : j0+n]: 0, or -1 when out of memory. */
static int rect_float(const packed_call *g, int i0, int m, int j0, int n)
{
    const mcnn_packed_b *p = g->p;
    const int MR = p->mr, NR = p->nr;
    int mc_blk = round_up(ceil_div(m, ceil_div(m, p->mc)), MR);
    int nc_blk = round_up(ceil_div(p->N, ceil_div(p->N, p->nc)), NR);
    int vec = p->f32 ? p->f32->isa[0] != '\0' : p->lowp->level > 0;
    /* a pair kernel's A: x's rows as pair words at ap, their panels at ap2 */
    const int pairs = p->kgroup == 2;
    size_t afloats = (size_t)p->kc_blk * mc_blk;
    float *ap = mcnn_gemm_scratch(pairs ? 2 * afloats : afloats);
    if (!ap) return -1;
    uint32_t *ap2 = (uint32_t *)(ap + afloats);
    for (int jc = j0; jc < j0 + n; jc += nc_blk) {
        int nc = min_int(nc_blk, j0 + n - jc);
        for (int pc = 0; pc < p->K; pc += p->kc_blk) {
            int kc = min_int(p->kc_blk, p->K - pc), kcp = round_up(kc, p->kgroup);
            float beta = pc == 0 ? g->beta : 1.0f; /* later K blocks add to y */
            size_t block = (size_t)pc * p->npad + (size_t)(jc / NR) * kcp * NR;
            for (int ic = i0; ic < i0 + m; ic += mc_blk) {
                int mc = min_int(mc_blk, i0 + m - ic);
                if (pairs && g->trans_x) { /* xᵀ's rows are already along i: one pass */
                    mcnn_bf16_pack_pairs_t(g->x, g->lda, ic, mc, pc, kc, MR, ap2);
                } else if (pairs) {
                    /* each row of x rounded to pair words (contiguous, both ways), then the
                     * words transposed into panels by mcnn_gemm_pack_a as if floats: it only
                     * moves them (copies and shuffles), so their bits pass intact */
                    uint32_t *rows = (uint32_t *)ap;
                    for (int i = 0; i < mc; i++)
                        mcnn_bf16_pair_row(g->x + (size_t)(ic + i) * g->lda + pc, kc,
                                           rows + (size_t)i * (kcp / 2));
                    mcnn_gemm_pack_a(0, (const float *)rows, kcp / 2, 0, mc, 0, kcp / 2, MR, 0,
                                     ceil_div(mc, MR), (float *)ap2, vec);
                } else {
                    mcnn_gemm_pack_a(g->trans_x, g->x, g->lda, ic, mc, pc, kc, MR, 0,
                                     ceil_div(mc, MR), ap, vec);
                    if (p->lowp) mcnn_bf16_round(ap, ap, (size_t)kc * round_up(mc, MR));
                }
                for (int q = 0; q * NR < nc; q++) {
                    int nn = min_int(NR, nc - q * NR);
                    size_t boff = block + (size_t)q * kcp * NR;
                    for (int r = 0; r * MR < mc; r++) {
                        int mm = min_int(MR, mc - r * MR);
                        int row = ic + r * MR, col = jc + q * NR;
                        float *c = y_at(g, row, col), t[TILE_MAX];
                        const float *a = ap + (size_t)r * kc * MR;
                        const uint16_t *b16 = (const uint16_t *)p->panels + boff;
                        if (p->f32) {
                            p->f32->fn(kc, a, (const float *)p->panels + boff, NR, c,
                                       g->trans_y ? 1 : g->ldc, g->trans_y ? g->ldc : 1, mm,
                                       nn, 1.0f, beta);
                            continue;
                        }
                        float *ct = c;
                        int ldt = g->ldc;
                        if (g->trans_y) { /* the kernel writes t, row-major */
                            tile_in(g, t, NR, row, col, mm, nn, beta);
                            ct = t, ldt = NR;
                        }
                        if (pairs)
                            p->lowp->bf16x2(kcp / 2, ap2 + (size_t)r * (kcp / 2) * MR,
                                            (const uint32_t *)b16, ct, ldt, mm, nn, beta);
                        else
                            p->lowp->bf16(kc, a, b16, ct, ldt, mm, nn, beta);
                        if (g->trans_y) tile_out(g, t, NR, row, col, mm, nn);
                    }
                }
            }
        }
    }
    if (g->bias) /* after the sum, as mcnn_linear_forward adds it */
        for (int i = i0; i < i0 + m; i++)
            for (int j = j0; j < j0 + n; j++) *y_at(g, i, j) += g->bias[j];
    return 0;
}

/* int8 on y[i0 : i0+m, j0 : j0+n]: the kernel reads the quantized rows where they are. */
static int rect_int8(const packed_call *g, int i0, int m, int j0, int n)
{
    const mcnn_packed_b *p = g->p;
    const int MR = p->mr, NR = p->nr, kq = p->kq;
    const size_t lda = (size_t)MCNN_INT8_KGROUP * kq, ldc = (size_t)g->ldc;
    int mc_blk = round_up(ceil_div(m, ceil_div(m, p->mc)), MR);
    for (int ic = i0; ic < i0 + m; ic += mc_blk) {
        int mc = min_int(mc_blk, i0 + m - ic);
        for (int jq = j0; jq < j0 + n; jq += NR) {
            int nn = min_int(NR, j0 + n - jq);
            const int8_t *b = (const int8_t *)p->panels + (size_t)(jq / NR) * lda * NR;
            for (int r = 0; r * MR < mc; r++) {
                int mm = min_int(MR, mc - r * MR), row0 = ic + r * MR;
                mcnn_int8_epilogue e = {g->zx + row0, g->sx + row0, p->qsums + jq,
                                        p->scales + jq, g->bias ? g->bias + jq : NULL, g->beta};
                const uint8_t *a = g->qx + (size_t)row0 * lda;
                if (!g->trans_y) {
                    p->lowp->int8(kq, a, lda, b, &e, g->y + (size_t)row0 * ldc + jq, ldc, mm,
                                  nn);
                } else {
                    float t[TILE_MAX];
                    tile_in(g, t, NR, row0, jq, mm, nn, g->beta);
                    p->lowp->int8(kq, a, lda, b, &e, t, (size_t)NR, mm, nn);
                    tile_out(g, t, NR, row0, jq, mm, nn);
                }
            }
        }
    }
    return 0;
}

static int rect(const packed_call *g, int i0, int m, int j0, int n)
{
    return g->p->precision == MCNN_PRECISION_INT8 ? rect_int8(g, i0, m, j0, n)
                                                  : rect_float(g, i0, m, j0, n);
}

int mcnn_lowp_want_threads(double macs)
{
#ifdef _OPENMP
    if (omp_in_parallel() || macs < 64.0 * 64.0 * 64.0) return 1;
    return omp_get_max_threads();
#else
    (void)macs;
    return 1;
#endif
}

/* int8: x's rows quantized once, for every rectangle.  A transposed x (K, M) is gathered
 * QUANT_ROWS rows at a time into the thread's scratch, so each row reaches the quantizer
 * contiguous, as it does untransposed: the same integers.  0, or -1 when out of memory. */
enum { QUANT_ROWS = 16 }; /* a whole 64-byte line of each k */
static int quantize_x(packed_call *g, int nt, void *qbuf)
{
    const mcnn_packed_b *p = g->p;
    const int M = g->M, K = p->K;
    const size_t row = (size_t)MCNN_INT8_KGROUP * p->kq;
    float *sx = qbuf;
    int32_t *zx = (int32_t *)(sx + M);
    uint8_t *qx = (uint8_t *)(zx + M);
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) if (nt > 1) reduction(| : failed)
#else
    (void)nt;
#endif
    for (int i0 = 0; i0 < M; i0 += QUANT_ROWS) {
        const int h = min_int(QUANT_ROWS, M - i0);
        float *rows = g->trans_x ? mcnn_gemm_scratch((size_t)QUANT_ROWS * K) : NULL;
        if (g->trans_x && !rows) {
            failed = 1;
            continue;
        }
        if (rows)
            for (int k = 0; k < K; k++) {
                const float *src = g->x + (size_t)k * g->lda + i0;
                for (int i = 0; i < h; i++) rows[(size_t)i * K + k] = src[i];
            }
        for (int i = i0; i < i0 + h; i++) {
            const float *xi = rows ? rows + (size_t)(i - i0) * K : g->x + (size_t)i * g->lda;
            if (row > (size_t)K) /* the pad to a group of 4 */
                memset(qx + i * row + K, 0, row - (size_t)K);
            sx[i] = p->lowp->quant_act(xi, K, qx + i * row, &zx[i]);
        }
    }
    g->qx = qx, g->sx = sx, g->zx = zx;
    return failed ? -1 : 0;
}

static mcnn_status packed_run(packed_call *g)
{
    const mcnn_packed_b *p = g->p;
    const int M = g->M;
    if (M <= 0) return MCNN_OK;
    int nt = mcnn_lowp_want_threads((double)M * p->N * p->K);
    void *qbuf = NULL;
    if (p->precision == MCNN_PRECISION_INT8) { /* quantize each row of x once */
        size_t row = (size_t)MCNN_INT8_KGROUP * p->kq;
        qbuf = mcnn_alloc((size_t)M * (row + 2 * sizeof(float)));
        if (!qbuf || quantize_x(g, nt, qbuf) != 0) {
            mcnn_free(qbuf);
            return mcnn_set_error(MCNN_ERR_NOMEM, "int8 GEMM: quantized x (%d rows)", M);
        }
    }
    int failed = 0;
    if (nt == 1) {
        failed = rect(g, 0, M, 0, p->N);
    } else { /* two rectangles per thread, handed out as threads become free, cut across the
              * longer side (each rectangle packs its rows of x again: a cut across N = 64
              * would pack all 3136 rows of ResNet's first stage four times) */
        int tiles_m = ceil_div(M, p->mr), tiles_n = ceil_div(p->N, p->nr);
        int pn = tiles_n >= tiles_m ? min_int(tiles_n, 2 * nt) : 1;
        int pm = tiles_n >= tiles_m ? 1 : min_int(tiles_m, 2 * nt);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(| : failed)
#endif
        for (int piece = 0; piece < pm * pn; piece++) {
            int pi = piece / pn, pj = piece % pn;
            int i0 = tiles_m * pi / pm * p->mr, i1 = min_int(tiles_m * (pi + 1) / pm * p->mr, M);
            int j0 = tiles_n * pj / pn * p->nr;
            int j1 = min_int(tiles_n * (pj + 1) / pn * p->nr, p->N);
            if (i1 > i0 && j1 > j0) failed |= rect(g, i0, i1 - i0, j0, j1 - j0) != 0;
        }
    }
    mcnn_free(qbuf);
    if (failed) return mcnn_set_error(MCNN_ERR_NOMEM, "packed GEMM: packing buffers");
    return MCNN_OK;
}

mcnn_status mcnn_gemm_packed(int M, const float *x, int lda, const mcnn_packed_b *p,
                             const float *bias, float beta, float *y, int ldc)
{
    packed_call g = {p, M, lda, ldc, x, bias, beta, y, NULL, NULL, NULL, 0, 0};
    return packed_run(&g);
}

mcnn_status mcnn_gemm_packed_t(int M, const float *xt, int ldx, const mcnn_packed_b *p,
                               float beta, float *yt, int ldy)
{
    packed_call g = {p, M, ldx, ldy, xt, NULL, beta, yt, NULL, NULL, NULL, 1, 1};
    return packed_run(&g);
}
