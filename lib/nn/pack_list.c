/* The list of a model's packed matrices (pack_list.h). */
#include "pack_list.h"

#include <stdlib.h>
#include <string.h>

static mcnn_status add_entry(mcnn_pack_list *l, mcnn_pack_entry entry)
{
    if (l->n == l->cap) {
        const int cap = l->cap ? 2 * l->cap : 64;
        mcnn_pack_entry *e = realloc(l->e, (size_t)cap * sizeof *e);
        if (!e) return mcnn_set_error(MCNN_ERR_NOMEM, "packing: out of memory");
        l->e = e, l->cap = cap;
    }
    l->e[l->n++] = entry;
    return MCNN_OK;
}

mcnn_status mcnn_pack_list_add(mcnn_pack_list *l, float **view, int N, int K,
                               mcnn_packed_b **slot)
{
    return add_entry(l, (mcnn_pack_entry){view, N, K, slot, NULL});
}

mcnn_status mcnn_pack_list_add_table(mcnn_pack_list *l, float **view, int V, int C,
                                     mcnn_embedding_lowp **table)
{
    return add_entry(l, (mcnn_pack_entry){view, V, C, NULL, table});
}

void mcnn_pack_list_free(mcnn_pack_list *l)
{
    free(l->e);
    memset(l, 0, sizeof *l);
}

static mcnn_status pack_entry(const mcnn_pack_entry *e, mcnn_precision p)
{
    if (!*e->view)
        return mcnn_set_error(MCNN_ERR_ARG, "packing: a %d x %d matrix's fp32 values were "
                              "released", e->N, e->K);
    if (e->table) return mcnn_embedding_lowp_create(e->table, p, *e->view, e->N, e->K);
    return mcnn_packed_b_create(e->slot, p, *e->view, e->N, e->K, e->K);
}

static size_t release_entry(const mcnn_pack_entry *e)
{
    const size_t bytes = mcnn_release_pages(*e->view, (size_t)e->N * e->K * sizeof(float));
    *e->view = NULL;
    return bytes;
}

mcnn_status mcnn_pack_list_pack(mcnn_pack_list *l, mcnn_precision p)
{
    for (int i = 0; i < l->n; i++) MCNN_TRY(pack_entry(&l->e[i], p));
    return MCNN_OK;
}

static const mcnn_pack_entry *find_entry(const mcnn_pack_list *l, const float *w)
{
    for (int i = 0; i < l->n; i++)
        if (*l->e[i].view && *l->e[i].view == w) return &l->e[i];
    return NULL;
}

int mcnn_pack_list_has(const mcnn_pack_list *l, const float *w)
{
    return find_entry(l, w) != NULL;
}

mcnn_status mcnn_pack_list_loaded(mcnn_pack_list *l, const float *w)
{
    const mcnn_pack_entry *e = find_entry(l, w);
    if (!e) return MCNN_OK;
    MCNN_TRY(pack_entry(e, l->precision));
    if (l->release) release_entry(e);
    return MCNN_OK;
}

int mcnn_pack_list_complete(const mcnn_pack_list *l)
{
    for (int i = 0; i < l->n; i++)
        if (l->e[i].table ? !*l->e[i].table : !*l->e[i].slot) return 0;
    return 1;
}

size_t mcnn_pack_list_release(const mcnn_pack_list *l)
{
    size_t bytes = 0;
    for (int i = 0; i < l->n; i++)
        if (*l->e[i].view) bytes += release_entry(&l->e[i]);
    return bytes;
}

mcnn_status mcnn_inference_only_error(const char *call)
{
    return mcnn_set_error(MCNN_ERR_ARG, "%s: the model is inference-only (the fp32 copies of its "
                          "packed matrices were released: docs/precision.md, \"Memory\"); load "
                          "it again without inference_only to train, save or change its "
                          "precision", call);
}

mcnn_status mcnn_check_load_precision(const char *path, mcnn_precision p)
{
    if (p != MCNN_PRECISION_FP32 && p != MCNN_PRECISION_BF16 && p != MCNN_PRECISION_INT8)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: load option precision %d is none of "
                              "MCNN_PRECISION_FP32, _BF16, _INT8", path, (int)p);
    return MCNN_OK;
}

mcnn_status mcnn_finish_load_precision(const char *path, const mcnn_pack_list *l,
                                       int inference_only)
{
    if (inference_only && !mcnn_pack_list_complete(l))
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: a matrix to pack was not read", path);
    return MCNN_OK;
}

mcnn_status mcnn_pack_list_release_model(mcnn_pack_list *l, int packed, int *inference_only,
                                         const char *model)
{
    if (!packed)
        return mcnn_set_error(MCNN_ERR_ARG, "%s_release_training_weights: no precision set "
                              "(mcnn_%s_set_precision packs the matrices the model then runs "
                              "on)", model, model);
    mcnn_pack_list_release(l);
    *inference_only = 1;
    return MCNN_OK;
}

void mcnn_pack_list_for_load(mcnn_pack_list *l, mcnn_precision p, mcnn_precision *precision,
                             int *inference_only)
{
    l->precision = p, l->release = 1;
    *precision = p, *inference_only = 1;
}
