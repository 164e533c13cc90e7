/* Loading the CLIP BPE vocabulary: OpenAI's merges file (the vocabulary is derived from it, as
 * SimpleTokenizer.__init__ does) or Hugging Face's vocab.json + merges.txt.
 *
 * SimpleTokenizer.__init__, which the OpenAI path follows line by line:
 *   merges = gzip.open(path).read().decode("utf-8").split('\n')[1:49152-256-2+1]
 *   merges = [tuple(m.split()) for m in merges]
 *   vocab  = bytes_to_unicode().values()  +  the same with '</w>'  +  [''.join(m) for m in merges]
 *            + ['<|startoftext|>', '<|endoftext|>']
 *   encoder = dict(zip(vocab, range(len(vocab))))       -- a repeated string keeps its last id
 *   bpe_ranks = dict(zip(merges, range(len(merges))))   -- a repeated pair keeps its last rank
 * Hugging Face's CLIPTokenizer reads merges.txt the same way, after a .strip() of the whole
 * file, and takes the ids from vocab.json.
 *
 * Python accepts any text there (an empty file, a label list, a truncated file) and builds a
 * smaller vocabulary whose special ids then differ from the model's: CLIP's tags change
 * silently.  We check instead (docs/tokenizer.md, "What a vocabulary must be"):
 *  - the file is at most 64 MB, inflated, and UTF-8; line 1 holds "#version";
 *  - each merge line used is two tokens separated by one space (a CR before the newline is
 *    allowed), each token a byte token or some merge's result;
 *  - no pair twice, no merge result twice or equal to a byte or special token;
 *  - the count: a merges file alone must give CLIP's 49408 tokens (48894 merges) unless the
 *    caller states another size (mcnn_tokenizer_load_merges); with vocab.json, its token count
 *    must be 512 + merges + 2 and its ids 0 .. count - 1, each once. */
#include "text/bpe_internal.h"
#include "text/unicode.h"
#include "io/json.h"

#include <stdlib.h>
#include <string.h>

#define N_BASE 512                              /* the byte tokens, with and without </w> */
#define N_SPECIAL 2                             /* <|startoftext|>, <|endoftext|>         */
#define CLIP_VOCAB_SIZE 49408                   /* clip.tokenize's vocabulary             */
#define N_MERGES_MAX (CLIP_VOCAB_SIZE - N_BASE - N_SPECIAL) /* 48894: lines 1 .. 48894    */
#define VOCAB_FILE_MAX ((size_t)64 << 20) /* OpenAI's merges file: 3.2 MB once inflated */

/* ---- bytes_to_unicode ------------------------------------------------------------------------
 * Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68
 * (controls, space, DEL, NBSP, soft hyphen) are moved, in order, to U+0100..U+0143, so that
 * every byte is a visible character and BPE never sees whitespace. */
static int printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

/* The moved bytes are 0..32, 127..160 and 173, numbered n = 0..67 in that order. */
uint32_t mcnn_bpe_byte_char(int b)
{
    if (printable(b)) return (uint32_t)b;
    int n = b <= 32 ? b : b <= 160 ? 33 + (b - 127) : 67;
    return 256u + (uint32_t)n;
}

int mcnn_bpe_char_byte(uint32_t cp)
{
    if (cp < 256) return printable((int)cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    int n = (int)(cp - 256);
    return n <= 32 ? n : n <= 66 ? 127 + (n - 33) : 173;
}

/* The byte SimpleTokenizer's vocabulary lists at position i (0..255): dict order of
 * bytes_to_unicode(), the printable bytes first. */
static int vocab_order_byte(int i)
{
    int k = 0;
    for (int b = 0; b < 256; b++)
        if (printable(b) && k++ == i) return b;
    for (int b = 0; b < 256; b++)
        if (!printable(b) && k++ == i) return b;
    return -1;
}

/* ---- the symbol table ---------------------------------------------------------------------- */
static uint64_t hash_str(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

static mcnn_status tables_init(mcnn_tokenizer *t, size_t nsym, size_t npairs)
{
    t->cap_sym = (int)nsym;
    t->sym_off = malloc((nsym + 1) * sizeof *t->sym_off);
    t->sym_id = malloc((nsym ? nsym : 1) * sizeof *t->sym_id);
    t->str_mask = pow2_at_least(2 * nsym) - 1;
    t->str_slot = malloc((t->str_mask + 1) * sizeof *t->str_slot);
    t->pair_mask = pow2_at_least(2 * npairs) - 1;
    t->pair_key = calloc(t->pair_mask + 1, sizeof *t->pair_key);
    t->pair_rank = malloc((t->pair_mask + 1) * sizeof *t->pair_rank);
    t->pair_sym = malloc((t->pair_mask + 1) * sizeof *t->pair_sym);
    t->pool_cap = 1 << 16;
    t->pool = malloc(t->pool_cap);
    if (!t->sym_off || !t->sym_id || !t->str_slot || !t->pair_key || !t->pair_rank ||
        !t->pair_sym || !t->pool)
        return mcnn_set_error(MCNN_ERR_NOMEM, "tokenizer: no memory for %zu tokens", nsym);
    memset(t->str_slot, 0xff, (t->str_mask + 1) * sizeof *t->str_slot);
    t->sym_off[0] = 0;
    t->sot_sym = t->eot_sym = -1;
    return MCNN_OK;
}

int mcnn_bpe_find(const mcnn_tokenizer *t, const char *s, size_t len)
{
    for (size_t h = hash_str(s, len) & t->str_mask;; h = (h + 1) & t->str_mask) {
        int32_t k = t->str_slot[h];
        if (k < 0) return -1;
        size_t klen = t->sym_off[k + 1] - t->sym_off[k];
        if (klen == len && memcmp(t->pool + t->sym_off[k], s, len) == 0) return k;
    }
}

/* Insert s with this id.  A string already present is left as it is and *existing receives
 * its symbol (the callers refuse repeats); otherwise *existing is -1. */
static mcnn_status add_symbol(mcnn_tokenizer *t, const char *s, size_t len, int32_t id,
                              int *existing)
{
    size_t h = hash_str(s, len) & t->str_mask;
    for (;; h = (h + 1) & t->str_mask) {
        int32_t k = t->str_slot[h];
        if (k < 0) break;
        if (t->sym_off[k + 1] - t->sym_off[k] == len && memcmp(t->pool + t->sym_off[k], s, len) == 0) {
            *existing = k;
            return MCNN_OK;
        }
    }
    *existing = -1;
    if (t->nsym == t->cap_sym)
        return mcnn_set_error(MCNN_ERR_FORMAT, "tokenizer: more tokens than counted");
    if (t->pool_len + len > t->pool_cap) {
        size_t cap = t->pool_cap;
        while (cap < t->pool_len + len) cap *= 2;
        char *p = realloc(t->pool, cap);
        if (!p) return mcnn_set_error(MCNN_ERR_NOMEM, "tokenizer: no memory for token strings");
        t->pool = p, t->pool_cap = cap;
    }
    memcpy(t->pool + t->pool_len, s, len);
    t->pool_len += len;
    int k = t->nsym++;
    t->sym_off[k + 1] = t->pool_len;
    t->sym_id[k] = id;
    t->str_slot[h] = k;
    return MCNN_OK;
}

/* Add the pair (a, b) -> merged at this rank.  A pair is never added twice: the same pair
 * makes the same token, and a token made twice is refused before. */
static void add_pair(mcnn_tokenizer *t, int a, int b, int32_t rank, int merged)
{
    uint64_t key = mcnn_bpe_pair_key(a, b);
    for (size_t h = mcnn_bpe_pair_hash(key) & t->pair_mask;; h = (h + 1) & t->pair_mask) {
        if (t->pair_key[h] == 0) {
            t->npair++;
            t->pair_key[h] = key, t->pair_rank[h] = rank, t->pair_sym[h] = merged;
            return;
        }
    }
}

void mcnn_tokenizer_free(mcnn_tokenizer *t)
{
    if (!t) return;
    free(t->sym_off), free(t->sym_id), free(t->str_slot), free(t->pool);
    free(t->pair_key), free(t->pair_rank), free(t->pair_sym), free(t->id_sym);
    free(t);
}

int mcnn_tokenizer_vocab_size(const mcnn_tokenizer *t) { return t ? t->vocab_size : 0; }
int32_t mcnn_tokenizer_sot(const mcnn_tokenizer *t) { return t ? t->sym_id[t->sot_sym] : -1; }
int32_t mcnn_tokenizer_eot(const mcnn_tokenizer *t) { return t ? t->sym_id[t->eot_sym] : -1; }

/* ---- the merges file ------------------------------------------------------------------------ */
typedef struct merge {
    const char *a, *b; /* the two tokens, inside the file's text */
    size_t alen, blen;
    size_t line;       /* 1-based, for messages */
} merge;

/* The merged token a + b into buf (which holds alen + blen bytes); returns its length. */
static size_t join(char *buf, const merge *m)
{
    memcpy(buf, m->a, m->alen);
    memcpy(buf + m->alen, m->b, m->blen);
    return m->alen + m->blen;
}

/* Merge m[k] makes the token merge m[first] made already: the same pair twice, or two pairs
 * that join into one string (Python would keep the later id and leave a hole in the ids). */
static mcnn_status made_twice(const merge *m, size_t k, size_t first, const char *path)
{
    char e1[MCNN_EXCERPT_SIZE], e2[MCNN_EXCERPT_SIZE];
    if (m[k].alen == m[first].alen && m[k].blen == m[first].blen &&
        memcmp(m[k].a, m[first].a, m[k].alen) == 0 && memcmp(m[k].b, m[first].b, m[k].blen) == 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s:%zu: the merge '%s %s' repeats line %zu", path,
                              m[k].line, mcnn_utf8_excerpt(e1, m[k].a, m[k].alen),
                              mcnn_utf8_excerpt(e2, m[k].b, m[k].blen), m[first].line);
    char *buf = malloc(m[k].alen + m[k].blen);
    size_t jl = buf ? join(buf, &m[k]) : 0;
    mcnn_set_error(MCNN_ERR_FORMAT, "%s:%zu: merges into '%s', as line %zu does", path, m[k].line,
                   mcnn_utf8_excerpt(e1, buf ? buf : "", jl), m[first].line);
    free(buf);
    return MCNN_ERR_FORMAT;
}

static int has_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len;)
        if (mcnn_u_is_space_py(mcnn_utf8_next((const unsigned char *)s, &i))) return 1;
    return 0;
}

/* One merge line (validated UTF-8): "a b", exactly.  Python's str.split() would also take
 * tabs, several spaces or a third word; a file that has them is not a merges file. */
static mcnn_status parse_merge(merge *m, const char *s, size_t len, size_t line, const char *path)
{
    if (len && s[len - 1] == '\r') len--; /* a CRLF file */
    const char *sp = memchr(s, ' ', len);
    size_t alen = sp ? (size_t)(sp - s) : 0;
    if (!sp || alen == 0 || alen + 1 == len || has_space(s, alen) ||
        has_space(sp + 1, len - alen - 1)) {
        char ex[MCNN_EXCERPT_SIZE];
        return mcnn_set_error(MCNN_ERR_FORMAT,
                              "%s:%zu: expected a merge, two tokens separated by one space; "
                              "found '%s'", path, line, mcnn_utf8_excerpt(ex, s, len));
    }
    *m = (merge){s, sp + 1, alen, len - alen - 1, line};
    return MCNN_OK;
}

/* The merges of text (from its "#version" header line, numbered line0) up to want of them:
 * text.split('\n')[1 : want + 1], without the empty string after a final newline. */
static mcnn_status parse_merges(merge *out, size_t *count, const char *text, size_t len,
                                size_t want, size_t line0, const char *path)
{
    *count = 0;
    const char *nl = memchr(text, '\n', len);
    size_t end = nl ? (size_t)(nl - text) : len, i = 0;
    static const char tag[] = "#version";
    int header = 0;
    for (size_t k = 0; k + sizeof tag - 1 <= end && !header; k++)
        header = memcmp(text + k, tag, sizeof tag - 1) == 0;
    if (!header) {
        char ex[MCNN_EXCERPT_SIZE];
        return mcnn_set_error(MCNN_ERR_FORMAT,
                              "%s:%zu: not a BPE merges file: expected a '#version' header, "
                              "found '%s'", path, line0, mcnn_utf8_excerpt(ex, text, end));
    }
    size_t n = 0;
    while (nl && n < want) {
        i = end + 1;
        if (i == len) break; /* the file ends with a newline */
        nl = memchr(text + i, '\n', len - i);
        end = nl ? (size_t)(nl - text) : len;
        MCNN_TRY(parse_merge(&out[n], text + i, end - i, line0 + 1 + n, path));
        n++;
    }
    *count = n;
    return MCNN_OK;
}

static mcnn_status check_text(const char *text, size_t len, const char *path)
{
    if (len == 0) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: empty file", path);
    size_t bad = mcnn_utf8_check((const unsigned char *)text, len);
    if (bad < len) {
        size_t line = 1;
        for (size_t i = 0; i < bad; i++) line += text[i] == '\n';
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s:%zu: not valid UTF-8 (byte %zu is 0x%02X)",
                              path, line, bad, (unsigned)(unsigned char)text[bad]);
    }
    return MCNN_OK;
}

/* Python's str.strip() of validated UTF-8: the bounds [*a, *b) left after it. */
static void strip_utf8(const char *text, size_t len, size_t *a, size_t *b)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t i = 0, j = len;
    while (i < len) {
        size_t k = i;
        if (!mcnn_u_is_space_py(mcnn_utf8_next(u, &k))) break;
        i = k;
    }
    while (j > i) {
        size_t k = j - 1;
        while (k > i && (u[k] & 0xC0) == 0x80) k--; /* back to the first byte */
        size_t e = k;
        if (!mcnn_u_is_space_py(mcnn_utf8_next(u, &e))) break;
        j = k;
    }
    *a = i, *b = j;
}

/* The 512 base symbols and their byte tables, from strings already in the table. */
static mcnn_status base_symbols(mcnn_tokenizer *t, const char *path)
{
    for (int b = 0; b < 256; b++) {
        char s[8];
        int len = mcnn_utf8_put((unsigned char *)s, mcnn_bpe_byte_char(b));
        t->byte_sym[b] = mcnn_bpe_find(t, s, (size_t)len);
        memcpy(s + len, "</w>", 4);
        t->byte_sym_eow[b] = mcnn_bpe_find(t, s, (size_t)len + 4);
        if (t->byte_sym[b] < 0 || t->byte_sym_eow[b] < 0)
            return mcnn_set_error(MCNN_ERR_FORMAT,
                                  "%s: the vocabulary lacks the token for byte 0x%02X ('%.*s')",
                                  path, b, len, s);
    }
    t->sot_sym = mcnn_bpe_find(t, "<|startoftext|>", 15);
    t->eot_sym = mcnn_bpe_find(t, "<|endoftext|>", 13);
    if (t->sot_sym < 0 || t->eot_sym < 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: the vocabulary lacks %s", path,
                              t->sot_sym < 0 ? "<|startoftext|>" : "<|endoftext|>");
    return MCNN_OK;
}

/* decoder = {v: k for k, v in encoder.items()}.  The ids are 0 .. nsym - 1, each once. */
static mcnn_status build_decoder(mcnn_tokenizer *t)
{
    t->vocab_size = t->nsym;
    t->id_sym = malloc((size_t)t->nsym * sizeof *t->id_sym);
    if (!t->id_sym) return mcnn_set_error(MCNN_ERR_NOMEM, "tokenizer: no memory for the decoder");
    for (int k = 0; k < t->nsym; k++) t->id_sym[t->sym_id[k]] = k;
    return MCNN_OK;
}

/* The ranks, once every token has its symbol.  Both parts of each merge must be tokens, its
 * result a token made by no other merge (made[symbol]: the merge that made it + 1, or -1 for
 * the byte and special tokens), and no pair may repeat.  where names the file the tokens come
 * from, for messages. */
static mcnn_status add_merges(mcnn_tokenizer *t, const merge *m, size_t nm, int *made,
                              const char *path, const char *where)
{
    for (int k = 0; k < t->nsym; k++) made[k] = 0;
    for (int b = 0; b < 256; b++) made[t->byte_sym[b]] = made[t->byte_sym_eow[b]] = -1;
    made[t->sot_sym] = made[t->eot_sym] = -1;
    size_t cap = 0;
    for (size_t k = 0; k < nm; k++)
        if (m[k].alen + m[k].blen > cap) cap = m[k].alen + m[k].blen;
    char *buf = malloc(cap + 1);
    if (!buf) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory", path);
    mcnn_status st = MCNN_OK;
    char e1[MCNN_EXCERPT_SIZE];
    for (size_t k = 0; k < nm && st == MCNN_OK; k++) {
        int a = mcnn_bpe_find(t, m[k].a, m[k].alen), b = mcnn_bpe_find(t, m[k].b, m[k].blen);
        size_t jl = join(buf, &m[k]);
        int ab = mcnn_bpe_find(t, buf, jl);
        if (a < 0 || b < 0)
            st = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%zu: '%s' is not a token of %s (neither a "
                                "byte nor a merge's result)", path, m[k].line,
                                a < 0 ? mcnn_utf8_excerpt(e1, m[k].a, m[k].alen)
                                      : mcnn_utf8_excerpt(e1, m[k].b, m[k].blen), where);
        else if (ab < 0)
            st = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%zu: merges into '%s', which %s lacks",
                                path, m[k].line, mcnn_utf8_excerpt(e1, buf, jl), where);
        else if (made[ab] < 0)
            st = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%zu: merges into '%s', a byte or special "
                                "token", path, m[k].line, mcnn_utf8_excerpt(e1, buf, jl));
        else if (made[ab] > 0)
            st = made_twice(m, k, (size_t)made[ab] - 1, path);
        if (st != MCNN_OK) break;
        made[ab] = (int)k + 1;
        add_pair(t, a, b, (int32_t)k, ab);
    }
    free(buf);
    return st;
}

/* The 512 byte tokens in SimpleTokenizer's order, then each merge's result, then the two
 * special tokens, with ids 0, 1, 2, ...  A string met twice is refused (Python would keep
 * the later id and leave a hole). */
static mcnn_status derive_vocab(mcnn_tokenizer *t, const merge *m, size_t nm, const char *path)
{
    int32_t id = 0;
    int again = -1;
    mcnn_status st = MCNN_OK;
    for (int i = 0; i < N_BASE && st == MCNN_OK; i++) {
        char s[8];
        int l = mcnn_utf8_put((unsigned char *)s, mcnn_bpe_byte_char(vocab_order_byte(i % 256)));
        if (i >= 256) memcpy(s + l, "</w>", 4), l += 4;
        st = add_symbol(t, s, (size_t)l, id++, &again);
    }
    char *buf = NULL;
    for (size_t k = 0; k < nm && st == MCNN_OK; k++) {
        char *p = realloc(buf, m[k].alen + m[k].blen);
        if (!p) {
            st = mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory", path);
            break;
        }
        buf = p;
        size_t jl = join(buf, &m[k]);
        st = add_symbol(t, buf, jl, id++, &again);
        if (st == MCNN_OK && again >= 0) {
            char ex[MCNN_EXCERPT_SIZE];
            int32_t first = t->sym_id[again];
            if (first < N_BASE)
                st = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%zu: merges into '%s', a byte token",
                                    path, m[k].line, mcnn_utf8_excerpt(ex, buf, jl));
            else
                st = made_twice(m, k, (size_t)(first - N_BASE), path);
        }
    }
    free(buf);
    static const char *const special[N_SPECIAL] = {"<|startoftext|>", "<|endoftext|>"};
    for (int i = 0; i < N_SPECIAL && st == MCNN_OK; i++) {
        st = add_symbol(t, special[i], strlen(special[i]), id++, &again);
        if (st == MCNN_OK && again >= 0)
            st = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%zu: merges into %s, a special token", path,
                                m[t->sym_id[again] - N_BASE].line, special[i]);
    }
    return st;
}

/* A merges file alone, which must hold at least vocab_size - 514 merges (more are ignored,
 * as SimpleTokenizer ignores them). */
static mcnn_status load_openai(mcnn_tokenizer *t, const char *text, size_t len, const char *path,
                               int vocab_size)
{
    MCNN_TRY(check_text(text, len, path));
    size_t want = (size_t)(vocab_size - N_BASE - N_SPECIAL), nm = 0;
    merge *m = malloc((want ? want : 1) * sizeof *m);
    int *made = NULL;
    if (!m) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory", path);
    mcnn_status st = parse_merges(m, &nm, text, len, want, 1, path);
    if (st == MCNN_OK && nm < want)
        st = mcnn_set_error(MCNN_ERR_FORMAT,
                            "%s: %zu merges, but a vocabulary of %d tokens needs %zu (512 byte "
                            "tokens + merges + 2 special tokens): the file is truncated or is "
                            "not this model's", path, nm, vocab_size, want);
    if (st == MCNN_OK) st = tables_init(t, (size_t)vocab_size, nm);
    if (st == MCNN_OK) st = derive_vocab(t, m, nm, path);
    if (st == MCNN_OK) st = base_symbols(t, path);
    if (st == MCNN_OK && !(made = malloc((size_t)t->nsym * sizeof *made)))
        st = mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory", path);
    if (st == MCNN_OK) st = add_merges(t, m, nm, made, path, "the vocabulary");
    if (st == MCNN_OK) st = build_decoder(t);
    free(m), free(made);
    return st;
}

/* ---- Hugging Face: vocab.json + merges.txt -------------------------------------------------- */
/* vocab.json's tokens, with their ids: integers 0 .. count - 1, each once. */
static mcnn_status vocab_tokens(mcnn_tokenizer *t, const mcnn_json *root, const char *vpath)
{
    char e1[MCNN_EXCERPT_SIZE], e2[MCNN_EXCERPT_SIZE];
    const int64_t count = (int64_t)root->count;
    int32_t *owner = malloc((size_t)count * sizeof *owner); /* id -> symbol */
    if (!owner) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory", vpath);
    for (int64_t i = 0; i < count; i++) owner[i] = -1;
    mcnn_status st = MCNN_OK;
    int again = -1;
    for (const mcnn_json *m = root->child; m && st == MCNN_OK; m = m->next) {
        if (m->type != MCNN_JSON_NUMBER || !m->is_int || m->i < 0 || m->i >= count) {
            st = mcnn_set_error(MCNN_ERR_FORMAT,
                                "%s: token '%s' has a %s id, expected an integer in [0, %lld): "
                                "the ids of %lld tokens", vpath,
                                mcnn_utf8_excerpt(e1, m->key, m->key_len),
                                m->type == MCNN_JSON_NUMBER ? "bad" : mcnn_json_type_name(m->type),
                                (long long)count, (long long)count);
        } else if (owner[m->i] >= 0) {
            int k = owner[m->i];
            st = mcnn_set_error(MCNN_ERR_FORMAT, "%s: tokens '%s' and '%s' both have id %lld",
                                vpath, mcnn_utf8_excerpt(e1, t->pool + t->sym_off[k],
                                                         t->sym_off[k + 1] - t->sym_off[k]),
                                mcnn_utf8_excerpt(e2, m->key, m->key_len), (long long)m->i);
        } else {
            owner[m->i] = t->nsym;
            st = add_symbol(t, m->key, m->key_len, (int32_t)m->i, &again);
            if (st == MCNN_OK && again >= 0) /* mcnn_json_first_duplicate saw none: never */
                st = mcnn_set_error(MCNN_ERR_FORMAT, "%s: token '%s' appears twice", vpath,
                                    mcnn_utf8_excerpt(e1, m->key, m->key_len));
        }
    }
    free(owner);
    return st;
}

static mcnn_status load_hf(mcnn_tokenizer *t, const char *vtext, size_t vlen, const char *vpath,
                           const char *mtext, size_t mlen, const char *mpath)
{
    MCNN_TRY(check_text(mtext, mlen, mpath));
    if (vlen == 0) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: empty file", vpath);
    mcnn_json_doc doc;
    mcnn_status st = mcnn_json_parse(&doc, vtext, vlen);
    if (st != MCNN_OK) return mcnn_wrap_error(st, "%s: ", vpath);
    const mcnn_json *root = doc.root;
    if (root->type != MCNN_JSON_OBJECT) {
        mcnn_json_free(&doc);
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: expected an object of token -> id, found %s",
                              vpath, mcnn_json_type_name(root->type));
    }
    const mcnn_json *dup = mcnn_json_first_duplicate(root);
    if (dup) {
        char ex[MCNN_EXCERPT_SIZE];
        mcnn_set_error(MCNN_ERR_FORMAT, "%s: token '%s' appears twice", vpath,
                       mcnn_utf8_excerpt(ex, dup->key, dup->key_len));
        mcnn_json_free(&doc);
        return MCNN_ERR_FORMAT;
    }
    size_t a, b, line0 = 1, nm = 0;
    strip_utf8(mtext, mlen, &a, &b); /* HF reads merges.txt with .strip() */
    for (size_t i = 0; i < a; i++) line0 += mtext[i] == '\n';
    merge *m = malloc(N_MERGES_MAX * sizeof *m);
    int *made = NULL;
    if (!m) st = mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory", mpath);
    if (st == MCNN_OK && a == b) st = mcnn_set_error(MCNN_ERR_FORMAT, "%s: empty file", mpath);
    if (st == MCNN_OK) st = parse_merges(m, &nm, mtext + a, b - a, N_MERGES_MAX, line0, mpath);
    if (st == MCNN_OK && root->count != N_BASE + nm + N_SPECIAL)
        st = mcnn_set_error(MCNN_ERR_FORMAT,
                            "%s has %zu tokens, but the %zu merges of %s make %zu (512 byte "
                            "tokens + merges + 2 special tokens): the files do not belong "
                            "together, or one is truncated", vpath, root->count, nm, mpath,
                            N_BASE + nm + N_SPECIAL);
    if (st == MCNN_OK) st = tables_init(t, root->count, nm);
    if (st == MCNN_OK) st = vocab_tokens(t, root, vpath);
    mcnn_json_free(&doc);
    if (st == MCNN_OK) st = base_symbols(t, vpath);
    if (st == MCNN_OK && !(made = malloc((size_t)t->nsym * sizeof *made)))
        st = mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory", mpath);
    if (st == MCNN_OK) st = add_merges(t, m, nm, made, mpath, vpath);
    if (st == MCNN_OK) st = build_decoder(t);
    free(m), free(made);
    return st;
}

static int looks_like_json(const unsigned char *s, size_t n)
{
    size_t i = 0;
    if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) i = 3; /* a UTF-8 BOM */
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
    return i < n && s[i] == '{';
}

static mcnn_status new_tokenizer(mcnn_tokenizer **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return mcnn_set_error(MCNN_ERR_NOMEM, "tokenizer: no memory");
    return MCNN_OK;
}

static mcnn_status finish(mcnn_tokenizer **out, mcnn_tokenizer *t, mcnn_status st)
{
    if (st != MCNN_OK) {
        mcnn_tokenizer_free(t);
        *out = NULL;
        return st;
    }
    *out = t;
    return MCNN_OK;
}

static mcnn_status read_vocab_file(unsigned char **text, size_t *n, const char *path)
{
    return mcnn_read_file_maybe_gzip_max(text, n, path, VOCAB_FILE_MAX);
}

mcnn_status mcnn_tokenizer_load_hf(mcnn_tokenizer **out, const char *vocab_path,
                                   const char *merges_path)
{
    if (!out || !vocab_path || !merges_path)
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_tokenizer_load_hf: NULL argument");
    *out = NULL;
    unsigned char *v = NULL, *m = NULL;
    size_t vn = 0, mn = 0;
    MCNN_TRY(read_vocab_file(&v, &vn, vocab_path));
    mcnn_status st = read_vocab_file(&m, &mn, merges_path);
    if (st != MCNN_OK) {
        free(v);
        return mcnn_wrap_error(st, "%s: a Hugging Face vocabulary needs its merges.txt: ", vocab_path);
    }
    mcnn_tokenizer *t = NULL;
    st = new_tokenizer(&t);
    if (st == MCNN_OK)
        st = load_hf(t, (const char *)v, vn, vocab_path, (const char *)m, mn, merges_path);
    free(v), free(m);
    return finish(out, t, st);
}

static mcnn_status load_merges_file(mcnn_tokenizer **out, const unsigned char *text, size_t n,
                                    const char *path, int vocab_size)
{
    mcnn_tokenizer *t = NULL;
    mcnn_status st = new_tokenizer(&t);
    if (st == MCNN_OK) st = load_openai(t, (const char *)text, n, path, vocab_size);
    return finish(out, t, st);
}

mcnn_status mcnn_tokenizer_load_merges(mcnn_tokenizer **out, const char *path, int vocab_size)
{
    if (!out || !path) return mcnn_set_error(MCNN_ERR_ARG, "mcnn_tokenizer_load_merges: NULL argument");
    *out = NULL;
    if (vocab_size < N_BASE + N_SPECIAL || vocab_size > CLIP_VOCAB_SIZE)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: a vocabulary of %d tokens: expected %d to %d",
                              path, vocab_size, N_BASE + N_SPECIAL, CLIP_VOCAB_SIZE);
    unsigned char *text = NULL;
    size_t n = 0;
    MCNN_TRY(read_vocab_file(&text, &n, path));
    mcnn_status st = looks_like_json(text, n)
                         ? mcnn_set_error(MCNN_ERR_FORMAT, "%s: a vocab.json, not a merges file: "
                                          "load it with its merges.txt", path)
                         : load_merges_file(out, text, n, path, vocab_size);
    free(text);
    return st;
}

mcnn_status mcnn_tokenizer_load(mcnn_tokenizer **out, const char *path)
{
    if (!out || !path) return mcnn_set_error(MCNN_ERR_ARG, "mcnn_tokenizer_load: NULL argument");
    *out = NULL;
    unsigned char *text = NULL;
    size_t n = 0;
    MCNN_TRY(read_vocab_file(&text, &n, path));
    if (!looks_like_json(text, n)) {
        mcnn_status st = load_merges_file(out, text, n, path, CLIP_VOCAB_SIZE);
        free(text);
        return st;
    }
    free(text);
    /* merges.txt in the same folder */
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    char *mp = malloc(dir + sizeof "merges.txt");
    if (!mp) return mcnn_set_error(MCNN_ERR_NOMEM, "tokenizer: no memory");
    memcpy(mp, path, dir);
    memcpy(mp + dir, "merges.txt", sizeof "merges.txt");
    mcnn_status st = mcnn_tokenizer_load_hf(out, path, mp);
    free(mp);
    return st;
}
