/* The matrices of a model that inference packs (mcnn_*_set_precision), as one list: where each
 * one's fp32 values are, its shape, and the slot its packed copy goes to.  An embedding table
 * (a lookup, not a GEMM) is an entry too, whose copy is its rows in bf16 or int8
 * (embedding_lowp.h).  The list serves the three things done to them:
 *   pack them all                      mcnn_pack_list_pack      (set_precision)
 *   pack each one as soon as it is read mcnn_pack_list_loaded   (an inference-only load)
 *   give their fp32 pages back         mcnn_pack_list_release   (release_training_weights)
 * Packing each matrix right after a load has read it, and releasing its fp32 pages then, is
 * what keeps an inference-only load from ever holding every fp32 matrix at once: its peak is
 * the packed copies plus one matrix (docs/precision.md "Memory"). */
#ifndef MCNN_PACK_LIST_H
#define MCNN_PACK_LIST_H

#include "internal.h"
#include "mcnn/lowp.h"
#include "embedding_lowp.h"

typedef struct mcnn_pack_entry {
    float **view;          /* the model's pointer to the (N, K) fp32 values (row stride K) the
                              forward falls back on; NULL once they are released           */
    int N, K;
    mcnn_packed_b **slot;  /* where the packed copy goes; NULL until packed                  */
    mcnn_embedding_lowp **table; /* or, for an embedding table (N rows of K; slot NULL), where
                              its bf16 / int8 rows go; NULL until made                         */
} mcnn_pack_entry;

typedef struct mcnn_pack_list {
    mcnn_pack_entry *e;
    int n, cap;
    mcnn_precision precision; /* mcnn_pack_list_loaded packs in this                        */
    int release;              /* ... and then releases the matrix's fp32 values            */
} mcnn_pack_list;

mcnn_status mcnn_pack_list_add(mcnn_pack_list *l, float **view, int N, int K,
                               mcnn_packed_b **slot);
/* An embedding table (V, C): "packed" into *table (bf16 or int8 rows), released like a matrix.
 * Only for those precisions: in fp32 a model looks its table up as it is, so it adds none. */
mcnn_status mcnn_pack_list_add_table(mcnn_pack_list *l, float **view, int V, int C,
                                     mcnn_embedding_lowp **table);
void mcnn_pack_list_free(mcnn_pack_list *l);

/* Pack every entry in precision p.  On failure the slots filled so far stay filled: the
 * caller frees its packed arrays as usual. */
mcnn_status mcnn_pack_list_pack(mcnn_pack_list *l, mcnn_precision p);
/* A load has just read values into w: if w is an entry's matrix, pack it (in l->precision)
 * and, with l->release, release it (below).  Anything else: nothing to do. */
mcnn_status mcnn_pack_list_loaded(mcnn_pack_list *l, const float *w);
/* 1 when w is an entry's fp32 matrix (not yet released). */
int mcnn_pack_list_has(const mcnn_pack_list *l, const float *w);
/* 1 when every entry has its packed copy. */
int mcnn_pack_list_complete(const mcnn_pack_list *l);
/* Release every entry's fp32 values: their pages go back to the OS (mcnn_release_pages) and
 * the views become NULL, so that no forward can read what is no longer there (a packed GEMM
 * that cannot get its buffers then gives NaN instead of falling back on fp32: linear.c,
 * conv2d_packed.c).  Returns the bytes given back. */
size_t mcnn_pack_list_release(const mcnn_pack_list *l);

/* A model's mcnn_*_release_training_weights: MCNN_ERR_ARG naming mcnn_<model>_set_precision
 * when nothing is packed yet, else the list released and *inference_only set. */
mcnn_status mcnn_pack_list_release_model(mcnn_pack_list *l, int packed, int *inference_only,
                                         const char *model);
/* Before an inference-only load: the list packs in p and releases as the load reads each
 * matrix; the model's precision is p and it is inference only from now. */
void mcnn_pack_list_for_load(mcnn_pack_list *l, mcnn_precision p, mcnn_precision *precision,
                             int *inference_only);

/* The error of a call an inference-only model cannot honour (training, a backward, saving,
 * another precision): MCNN_ERR_ARG naming the call. */
mcnn_status mcnn_inference_only_error(const char *call);

/* A loader's two steps around the options precision and inference_only: the precision is
 * one of the enum's (MCNN_ERR_ARG naming the file otherwise); after the load, with
 * inference_only, every matrix of the list was read and packed. */
mcnn_status mcnn_check_load_precision(const char *path, mcnn_precision p);
mcnn_status mcnn_finish_load_precision(const char *path, const mcnn_pack_list *l,
                                       int inference_only);

/* mcnn_params_load, calling mcnn_pack_list_loaded(then, values) after each row is read
 * (then may be NULL), the rows then packs first, the largest first: lib/models/params.c. */
mcnn_status mcnn_params_load_then(mcnn_params *p, mcnn_safetensors *st, mcnn_key_map_fn map,
                                  void *ctx, unsigned char *used, mcnn_pack_list *then);

#endif
