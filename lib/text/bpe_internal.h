/* The CLIP BPE tokenizer's inside: its tables (built by bpe_vocab.c, used by bpe.c) and the
 * text cleaning (clean.c).  Internal to the library.
 *
 * Python works on token strings; we number the distinct strings once ("symbols") and work on
 * the numbers.  Equal strings are one symbol, so comparing symbols is comparing strings, and a
 * merge (a, b) -> a+b is a lookup in a hash table keyed by the pair of symbols.  The id a symbol
 * encodes to is a separate number: SimpleTokenizer's vocabulary index (the last one, when a
 * string repeats, as dict(zip(vocab, range(...))) keeps it) or vocab.json's value. */
#ifndef MCNN_TEXT_BPE_INTERNAL_H
#define MCNN_TEXT_BPE_INTERNAL_H

#include "internal.h"
#include "mcnn/tokenizer.h"

struct mcnn_tokenizer {
    /* symbols: distinct token strings (UTF-8 of the byte-encoded text, "</w>" included) */
    int nsym, cap_sym;
    size_t *sym_off;   /* (nsym + 1) offsets into pool */
    char *pool;
    size_t pool_len, pool_cap;
    int32_t *sym_id;   /* (nsym) the id each symbol encodes to */
    int32_t *str_slot; /* open-addressing table string -> symbol, -1 empty; str_mask + 1 slots */
    size_t str_mask;
    /* merges: (left symbol, right symbol) -> rank and merged symbol */
    uint64_t *pair_key; /* (a << 32 | b) + 1; 0 empty */
    int32_t *pair_rank, *pair_sym;
    size_t pair_mask, npair;
    int byte_sym[256];     /* the symbol of byte b inside a word    */
    int byte_sym_eow[256]; /* and at its end (the same + "</w>")     */
    int sot_sym, eot_sym;
    int32_t *id_sym; /* (vocab_size) symbol of each id, -1 for ids with no token */
    int vocab_size;
};

/* The pair table's key and hash (bpe_vocab.c fills the table, bpe_merge.c reads it). */
static inline uint64_t mcnn_bpe_pair_key(int a, int b)
{
    return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1; /* 0 marks an empty slot */
}
static inline uint64_t mcnn_bpe_pair_hash(uint64_t k)
{
    k ^= k >> 33, k *= 0xff51afd7ed558ccdull, k ^= k >> 33;
    return k;
}

/* The merge loop on symbols w[0..len), in place; returns the new length.  _plain is Python's
 * loop, O(len^2); _heap gives the same result in O(len log len) with scratch for 3 len ints
 * and 3 len heap entries.  Pieces longer than MCNN_BPE_HEAP_MIN bytes take the heap. */
#define MCNN_BPE_HEAP_MIN 64
size_t mcnn_bpe_merge_plain(const mcnn_tokenizer *t, int *w, size_t len);
size_t mcnn_bpe_merge_heap(const mcnn_tokenizer *t, int *w, size_t len, int *scratch,
                           uint64_t *heap);

/* Python's bytes_to_unicode(): byte -> the code point standing for it in token strings. */
uint32_t mcnn_bpe_byte_char(int byte);
/* The inverse: code point -> byte, or -1 when cp stands for no byte. */
int mcnn_bpe_char_byte(uint32_t cp);

/* The string -> symbol lookup; -1 when absent. */
int mcnn_bpe_find(const mcnn_tokenizer *tok, const char *s, size_t len);

/* basic_clean + whitespace_clean + lower, as SimpleTokenizer.encode runs them (ftfy taken as
 * the identity): *out (malloc, free() it) receives *n code points.  Invalid UTF-8 in text is
 * MCNN_ERR_ARG with the offset of the first bad byte. */
mcnn_status mcnn_text_clean(uint32_t **out, size_t *n, const char *text, size_t len);

#endif
