/* CLIP's byte-level BPE: SimpleTokenizer.encode / .decode and clip.tokenize.
 *
 *   text  = clean(text)                                    clean.c
 *   for piece in re.findall(pattern, text):                split_next() below
 *       word = the piece's UTF-8 bytes, one symbol each, "</w>" glued to the last
 *       repeat: take the adjacent pair with the lowest merge rank, merge every occurrence
 *               of it left to right; until no pair has a rank (or one symbol is left)
 *       ids += [encoder[s] for s in word]
 *
 * The pattern, tried in this order at each position of the text (IGNORECASE):
 *   <|startoftext|>  <|endoftext|>  's 't 're 've 'm 'll 'd  [\p{L}]+  [\p{N}]  [^\s\p{L}\p{N}]+
 * A position that matches none (whitespace, and U+0345: see unicode.h) is skipped.  A piece
 * that is exactly "<|startoftext|>" or "<|endoftext|>" is its special id (SimpleTokenizer's
 * cache starts with those two), so literal markers in the text become the markers. */
#include "text/bpe_internal.h"
#include "text/unicode.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- splitting ------------------------------------------------------------------------------ */
/* 1 when s[i..] starts with the ASCII literal lit, each character compared as IGNORECASE does. */
static int starts_with(const uint32_t *s, size_t n, size_t i, const char *lit)
{
    for (; *lit; lit++, i++)
        if (i >= n || !mcnn_u_matches_literal(s[i], (unsigned char)*lit)) return 0;
    return 1;
}

/* The next piece at or after *pos: [*start, *end); 0 when the text is used up. */
static int split_next(const uint32_t *s, size_t n, size_t *pos, size_t *start, size_t *end)
{
    static const char *const specials[] = {"<|startoftext|>", "<|endoftext|>"};
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t i = *pos; i < n; i++) {
        size_t len = 0;
        for (int k = 0; k < 2 && !len; k++)
            if (starts_with(s, n, i, specials[k])) len = strlen(specials[k]);
        for (int k = 0; k < 7 && !len; k++)
            if (starts_with(s, n, i, contractions[k])) len = strlen(contractions[k]);
        if (!len) {
            int cls = mcnn_u_class(s[i]);
            if (cls == MCNN_U_LETTER || cls == MCNN_U_OTHER) {
                len = 1;
                while (i + len < n && mcnn_u_class(s[i + len]) == cls) len++;
            } else if (cls == MCNN_U_NUMBER) {
                len = 1;
            }
        }
        if (len) {
            *start = i, *end = i + len, *pos = i + len;
            return 1;
        }
    }
    *pos = n;
    return 0;
}

/* ---- BPE ------------------------------------------------------------------------------------ */
typedef struct scratch {
    int *w;         /* the piece's symbols                            */
    int *links;     /* the heap merge's lists, for long pieces only   */
    uint64_t *heap;
    size_t cap;     /* longest piece the buffers hold                 */
} scratch;

/* One piece's bytes b[0..m) to ids.  Returns the ids written, or 0 when out of memory. */
static size_t bpe_piece(const mcnn_tokenizer *t, const unsigned char *b, size_t m, scratch *sc,
                        int32_t *out)
{
    if (m == 15 && memcmp(b, "<|startoftext|>", 15) == 0) {
        out[0] = t->sym_id[t->sot_sym];
        return 1;
    }
    if (m == 13 && memcmp(b, "<|endoftext|>", 13) == 0) {
        out[0] = t->sym_id[t->eot_sym];
        return 1;
    }
    int *w = sc->w;
    for (size_t i = 0; i + 1 < m; i++) w[i] = t->byte_sym[b[i]];
    w[m - 1] = t->byte_sym_eow[b[m - 1]];
    size_t len;
    if (m <= MCNN_BPE_HEAP_MIN) {
        len = mcnn_bpe_merge_plain(t, w, m);
    } else {
        if (!sc->links) {
            sc->links = malloc(3 * sc->cap * sizeof *sc->links);
            sc->heap = malloc(3 * sc->cap * sizeof *sc->heap);
            if (!sc->links || !sc->heap) return 0;
        }
        len = mcnn_bpe_merge_heap(t, w, m, sc->links, sc->heap);
    }
    for (size_t i = 0; i < len; i++) out[i] = t->sym_id[w[i]];
    return len;
}

/* SimpleTokenizer.encode into a fresh array (free() it). */
static mcnn_status encode_all(const mcnn_tokenizer *t, const char *text, int32_t **ids_out,
                              size_t *n_out)
{
    *ids_out = NULL;
    *n_out = 0;
    uint32_t *s;
    size_t n;
    MCNN_TRY(mcnn_text_clean(&s, &n, text, strlen(text)));
    /* every piece has at most 4 bytes per code point and gives at most one id per byte */
    int overflow = 0;
    size_t cap = mcnn_mul_size(n + 1, 4, &overflow);
    unsigned char *bytes = overflow ? NULL : malloc(cap);
    scratch sc = {overflow ? NULL : malloc(cap * sizeof(int)), NULL, NULL, cap};
    int32_t *ids = overflow ? NULL : malloc(cap * sizeof *ids);
    mcnn_status st = MCNN_OK;
    size_t nids = 0, pos = 0, a, b;
    if (!bytes || !sc.w || !ids) st = MCNN_ERR_NOMEM;
    while (st == MCNN_OK && split_next(s, n, &pos, &a, &b)) {
        size_t m = mcnn_utf8_encode(bytes, s + a, b - a), k = bpe_piece(t, bytes, m, &sc, ids + nids);
        if (k == 0) st = MCNN_ERR_NOMEM;
        nids += k;
    }
    free(s), free(bytes), free(sc.w), free(sc.links), free(sc.heap);
    if (st != MCNN_OK) {
        free(ids);
        return mcnn_set_error(st, "tokenizer: no memory for a text of %zu characters", n);
    }
    *ids_out = ids;
    *n_out = nids;
    return MCNN_OK;
}

mcnn_status mcnn_tokenizer_encode(const mcnn_tokenizer *t, const char *text, int32_t *ids,
                                  int max_ids, int *n)
{
    if (n) *n = 0;
    if (!t || !text || !n || (max_ids > 0 && !ids) || max_ids < 0)
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_tokenizer_encode: NULL or negative argument");
    int32_t *all;
    size_t count;
    MCNN_TRY(encode_all(t, text, &all, &count));
    if (count > INT_MAX) {
        free(all);
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_tokenizer_encode: %zu tokens overflow int", count);
    }
    *n = (int)count;
    size_t copy = count < (size_t)max_ids ? count : (size_t)max_ids;
    if (copy) memcpy(ids, all, copy * sizeof *ids);
    free(all);
    if (count > (size_t)max_ids)
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_tokenizer_encode: the text needs %zu ids, "
                              "the buffer holds %d", count, max_ids);
    return MCNN_OK;
}

mcnn_status mcnn_tokenizer_tokenize(const mcnn_tokenizer *t, const char *text, int32_t *out,
                                    int context, int truncate, int *length)
{
    if (length) *length = 0;
    if (!t || !text || !out || context < 1)
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_tokenizer_tokenize: NULL argument or context %d < 1",
                              context);
    int32_t *ids;
    size_t n;
    MCNN_TRY(encode_all(t, text, &ids, &n));
    size_t total = n + 2, keep = total;
    if (total > (size_t)context) {
        if (!truncate) {
            free(ids);
            return mcnn_set_error(MCNN_ERR_ARG, "tokenizer: the text needs %zu tokens with SOT and "
                                  "EOT, more than the context length %d (\"%.40s%s\")", total,
                                  context, text, strlen(text) > 40 ? "..." : "");
        }
        keep = (size_t)context;
    }
    /* [SOT] + ids + [EOT], cut to keep, its last made EOT, zeros after */
    out[0] = t->sym_id[t->sot_sym];
    for (size_t i = 1; i < keep; i++) out[i] = i - 1 < n ? ids[i - 1] : 0;
    out[keep - 1] = t->sym_id[t->eot_sym];
    for (size_t i = keep; i < (size_t)context; i++) out[i] = 0;
    free(ids);
    if (length) *length = (int)keep;
    return MCNN_OK;
}

mcnn_status mcnn_tokenizer_decode(const mcnn_tokenizer *t, const int32_t *ids, int n, char **text)
{
    if (text) *text = NULL;
    if (!t || !text || n < 0 || (n > 0 && !ids))
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_tokenizer_decode: NULL or negative argument");
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size || t->id_sym[ids[i]] < 0)
            return mcnn_set_error(MCNN_ERR_ARG, "tokenizer: id %d (position %d) is not in the "
                                  "vocabulary of %d", ids[i], i, t->vocab_size);
        int k = t->id_sym[ids[i]];
        total += t->sym_off[k + 1] - t->sym_off[k];
    }
    /* token characters -> bytes (one byte per character) -> U+FFFD for invalid UTF-8 */
    unsigned char *raw = malloc(total + 1), *fixed = malloc(3 * total + 1);
    if (!raw || !fixed) {
        free(raw), free(fixed);
        return mcnn_set_error(MCNN_ERR_NOMEM, "tokenizer: no memory to decode %d ids", n);
    }
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        int k = t->id_sym[ids[i]];
        const unsigned char *s = (const unsigned char *)t->pool + t->sym_off[k];
        size_t j = 0, sl = t->sym_off[k + 1] - t->sym_off[k];
        while (j < sl) {
            uint32_t cp = mcnn_utf8_next(s, &j);
            int byte = mcnn_bpe_char_byte(cp);
            if (byte < 0) {
                free(raw), free(fixed);
                return mcnn_set_error(MCNN_ERR_FORMAT, "tokenizer: token %d ('%.*s') has U+%04X, "
                                      "which stands for no byte", ids[i], (int)sl,
                                      (const char *)s, (unsigned)cp);
            }
            raw[len++] = (unsigned char)byte;
        }
    }
    size_t m = mcnn_utf8_replace_invalid(fixed, raw, len);
    free(raw);
    /* .replace('</w>', ' '), in place: the output never outruns the input */
    size_t o = 0;
    for (size_t i = 0; i < m;) {
        if (i + 4 <= m && memcmp(fixed + i, "</w>", 4) == 0) {
            fixed[o++] = ' ';
            i += 4;
        } else {
            fixed[o++] = fixed[i++];
        }
    }
    fixed[o] = '\0';
    *text = (char *)fixed;
    return MCNN_OK;
}
