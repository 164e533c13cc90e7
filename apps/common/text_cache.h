/* A disk cache for CLIP text embeddings: computing them for 179 labels takes a moment with a
 * full-size model, and they depend only on (model, vocabulary, labels, templates).  The entry
 * lives next to the weights, in <model's folder>/text-cache/<model name>-<key>.safetensors,
 * where key is a 64-bit FNV-1a hash of the model file's path, size and modification time, the
 * vocabulary file's, the labels, the templates and the precision the text tower ran in (bf16
 * and int8 have entries of their own; fp32 packed gives fp32's bits and shares its entry), so
 * an edited label file or a re-downloaded model never meets a stale entry.  Every failure falls back to computing the embeddings: a
 * read-only folder silently (a model folder without write bits is left alone even when the
 * user, root, could write to it); an entry that cannot be what it claims (unreadable, another
 * key, another shape, a NaN or infinity, a row not of length 1) with a warning, and the entry is
 * rewritten. */
#ifndef MCNN_APPS_TEXT_CACHE_H
#define MCNN_APPS_TEXT_CACHE_H

#include <stddef.h>

typedef struct text_cache {
    char path[4096]; /* the entry's file; empty when no cache can be used */
    char key[17];    /* the hash, in hex                                  */
} text_cache;

/* Work out the entry for this run. */
void text_cache_init(text_cache *c, const char *model_path, const char *vocab_path,
                     const char *const *labels, int L, const char *const *templates, int T,
                     int dim, const char *precision);
/* 1 when the entry exists, has this key and shape, holds unit vectors, and was read into out
 * (L, dim); 0 otherwise (with a warning on stderr when an entry exists but is unusable). */
int text_cache_load(const text_cache *c, float *out, int L, int dim);
/* Write the entry (atomically); failures are ignored. */
void text_cache_save(const text_cache *c, const float *emb, int L, int dim);

#endif
