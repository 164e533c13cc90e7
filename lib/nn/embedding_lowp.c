/* An embedding table in bf16 or per-row int8 (embedding_lowp.h).  The rounding and the
 * quantizer are the GEMM packers' own (lib/kernels/lowp_quant.c), so a value is stored here as
 * it would be in a packed weight. */
#include "embedding_lowp.h"
#include "core/profile.h"
#include "kernels/lowp_internal.h"

#include <stdlib.h>

#define PAR_MIN 4096

struct mcnn_embedding_lowp {
    mcnn_precision precision;
    int V, C;
    uint16_t *bf16;   /* (V, C) bf16: the rounded values' top halves          */
    int8_t *q;        /* (V, C) int8                                           */
    float *scale;     /* (V)    int8: each row's s                             */
};

void mcnn_embedding_lowp_free(mcnn_embedding_lowp *e)
{
    if (!e) return;
    free(e->bf16);
    free(e->q);
    free(e->scale);
    free(e);
}

mcnn_status mcnn_embedding_lowp_create(mcnn_embedding_lowp **out, mcnn_precision p,
                                       const float *table, int V, int C)
{
    *out = NULL;
    if (p != MCNN_PRECISION_BF16 && p != MCNN_PRECISION_INT8)
        return mcnn_set_error(MCNN_ERR_ARG, "embedding table: precision %s has no compressed "
                              "copy (bf16 or int8)", mcnn_precision_name(p));
    if (V <= 0 || C <= 0 || !table)
        return mcnn_set_error(MCNN_ERR_ARG, "embedding table: %d x %d, or no values", V, C);
    mcnn_embedding_lowp *e = calloc(1, sizeof *e);
    const size_t n = (size_t)V * C;
    if (e) {
        *e = (mcnn_embedding_lowp){p, V, C, NULL, NULL, NULL};
        if (p == MCNN_PRECISION_BF16) e->bf16 = malloc(n * sizeof *e->bf16);
        else e->q = malloc(n), e->scale = malloc((size_t)V * sizeof *e->scale);
    }
    if (!e || (p == MCNN_PRECISION_BF16 ? !e->bf16 : !e->q || !e->scale)) {
        mcnn_embedding_lowp_free(e);
        return mcnn_set_error(MCNN_ERR_NOMEM, "embedding table: %d x %d in %s: out of memory",
                              V, C, mcnn_precision_name(p));
    }
    if (p == MCNN_PRECISION_BF16) {
        for (size_t i = 0; i < n; i++) e->bf16[i] = mcnn_bf16_from_float(table[i]);
    } else {
        for (int v = 0; v < V; v++) {
            int32_t qsum; /* the GEMM's zero-point correction; a lookup has none */
            const size_t at = (size_t)v * C;
            e->scale[v] = mcnn_quant_weight_row(table + at, C, e->q + at, &qsum);
        }
    }
    *out = e;
    return MCNN_OK;
}

size_t mcnn_embedding_lowp_bytes(const mcnn_embedding_lowp *e)
{
    if (!e) return 0;
    const size_t n = (size_t)e->V * e->C;
    return e->precision == MCNN_PRECISION_BF16 ? 2 * n : n + (size_t)e->V * sizeof(float);
}

void mcnn_embedding_lowp_forward(float *y, const int32_t *ids, const mcnn_embedding_lowp *e,
                                 int N)
{
    MCNN_PROF_SCOPE(MCNN_PROF_EMBED);
    const int C = e->C;
    #pragma omp parallel for if ((size_t)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *out = y + (size_t)n * C;
        const size_t row = (size_t)ids[n] * C;
        if (e->precision == MCNN_PRECISION_BF16) {
            for (int c = 0; c < C; c++) out[c] = mcnn_bf16_to_float(e->bf16[row + c]);
        } else {
            const float s = e->scale[ids[n]];
            for (int c = 0; c < C; c++) out[c] = (float)e->q[row + c] * s;
        }
    }
}
