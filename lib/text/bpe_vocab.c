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
 * file, and takes the ids from vocab.json. */
#include "text/bpe_internal.h"
#include "text/unicode.h"
#include "io/json.h"

#include <stdlib.h>
#include <string.h>

#define N_MERGES_MAX (49152 - 256 - 2) /* lines 1 .. 48894 of the merges file */
#define MAX_IDS (1 << 24)              /* a vocab.json id beyond this is taken as corruption */

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

/* Insert s with this id (a string already present takes the new id: dict semantics). */
static mcnn_status add_symbol(mcnn_tokenizer *t, const char *s, size_t len, int32_t id, int *sym)
{
    size_t h = hash_str(s, len) & t->str_mask;
    for (;; h = (h + 1) & t->str_mask) {
        int32_t k = t->str_slot[h];
        if (k < 0) break;
        if (t->sym_off[k + 1] - t->sym_off[k] == len && memcmp(t->pool + t->sym_off[k], s, len) == 0) {
            t->sym_id[k] = id;
            if (sym) *sym = k;
            return MCNN_OK;
        }
    }
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
    if (sym) *sym = k;
    return MCNN_OK;
}

static void add_pair(mcnn_tokenizer *t, int a, int b, int32_t rank, int merged)
{
    uint64_t key = mcnn_bpe_pair_key(a, b);
    for (size_t h = mcnn_bpe_pair_hash(key) & t->pair_mask;; h = (h + 1) & t->pair_mask) {
        if (t->pair_key[h] == 0 || t->pair_key[h] == key) { /* a repeated pair: last rank wins */
            if (t->pair_key[h] == 0) t->npair++;
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
typedef struct line {
    const char *s;
    size_t len;
} line;

/* str.split() of a line (validated UTF-8), on str.isspace characters.  The first two parts go
 * to parts; returns how many there are. */
static int split_ws(const char *s, size_t len, line parts[2])
{
    const unsigned char *u = (const unsigned char *)s;
    int n = 0;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        if (mcnn_u_is_space_py(mcnn_utf8_next(u, &i))) continue;
        size_t end = i;
        while (end < len) {
            size_t j = end;
            if (mcnn_u_is_space_py(mcnn_utf8_next(u, &j))) break;
            end = j;
        }
        if (n < 2) parts[n] = (line){s + start, end - start};
        n++;
        i = end;
    }
    return n;
}

/* ''.join(line.split()): the line without its whitespace.  buf holds len bytes. */
static size_t join_parts(char *buf, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, i = 0;
    while (i < len) {
        size_t start = i;
        if (!mcnn_u_is_space_py(mcnn_utf8_next(u, &i)))
            while (start < i) buf[o++] = s[start++];
    }
    return o;
}

/* text.split('\n')[1 : 48895]: line 0 is the "#version" header. */
static size_t merge_lines(line *out, const char *text, size_t len)
{
    size_t n = 0, i = 0, index = 0;
    while (n < N_MERGES_MAX) {
        const char *nl = i < len ? memchr(text + i, '\n', len - i) : NULL;
        size_t end = nl ? (size_t)(nl - text) : len;
        if (index++ >= 1) out[n++] = (line){text + i, end - i};
        if (!nl) break;
        i = end + 1;
    }
    return n;
}

static mcnn_status check_utf8(const char *text, size_t len, const char *path)
{
    size_t bad = mcnn_utf8_check((const unsigned char *)text, len);
    if (bad < len)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: not valid UTF-8 (byte %zu is 0x%02X)", path,
                              bad, (unsigned)(unsigned char)text[bad]);
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

/* decoder = {v: k for k, v in encoder.items()}: symbols in first-insertion order, last wins. */
static mcnn_status build_decoder(mcnn_tokenizer *t)
{
    int32_t top = -1;
    for (int k = 0; k < t->nsym; k++)
        if (t->sym_id[k] > top) top = t->sym_id[k];
    t->vocab_size = top + 1;
    t->id_sym = malloc((size_t)(top + 1) * sizeof *t->id_sym);
    if (!t->id_sym) return mcnn_set_error(MCNN_ERR_NOMEM, "tokenizer: no memory for the decoder");
    for (int32_t i = 0; i <= top; i++) t->id_sym[i] = -1;
    for (int k = 0; k < t->nsym; k++) t->id_sym[t->sym_id[k]] = k;
    return MCNN_OK;
}

static mcnn_status load_openai(mcnn_tokenizer *t, const char *text, size_t len, const char *path)
{
    MCNN_TRY(check_utf8(text, len, path));
    line *lines = malloc(N_MERGES_MAX * sizeof *lines);
    char *buf = malloc(len + 1);
    if (!lines || !buf) {
        free(lines), free(buf);
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory", path);
    }
    size_t nm = merge_lines(lines, text, len);
    mcnn_status st = tables_init(t, 512 + nm + 2, nm);
    int32_t id = 0;
    for (int i = 0; i < 256 && st == MCNN_OK; i++) {
        char s[8];
        int l = mcnn_utf8_put((unsigned char *)s, mcnn_bpe_byte_char(vocab_order_byte(i)));
        st = add_symbol(t, s, (size_t)l, id++, NULL);
    }
    for (int i = 0; i < 256 && st == MCNN_OK; i++) {
        char s[8];
        int l = mcnn_utf8_put((unsigned char *)s, mcnn_bpe_byte_char(vocab_order_byte(i)));
        memcpy(s + l, "</w>", 4);
        st = add_symbol(t, s, (size_t)l + 4, id++, NULL);
    }
    for (size_t m = 0; m < nm && st == MCNN_OK; m++) {
        st = add_symbol(t, buf, join_parts(buf, lines[m].s, lines[m].len), id++, NULL);
    }
    if (st == MCNN_OK) st = add_symbol(t, "<|startoftext|>", 15, id++, NULL);
    if (st == MCNN_OK) st = add_symbol(t, "<|endoftext|>", 13, id++, NULL);
    /* the ranks, once every string has its symbol */
    for (size_t m = 0; m < nm && st == MCNN_OK; m++) {
        line parts[2];
        if (split_ws(lines[m].s, lines[m].len, parts) != 2) continue; /* can never match a pair */
        int a = mcnn_bpe_find(t, parts[0].s, parts[0].len);
        int b = mcnn_bpe_find(t, parts[1].s, parts[1].len);
        int ab = mcnn_bpe_find(t, buf, join_parts(buf, lines[m].s, lines[m].len));
        if (a >= 0 && b >= 0 && ab >= 0) add_pair(t, a, b, (int32_t)m, ab);
    }
    free(lines), free(buf);
    if (st == MCNN_OK) st = base_symbols(t, path);
    if (st == MCNN_OK) st = build_decoder(t);
    return st;
}

/* ---- Hugging Face: vocab.json + merges.txt -------------------------------------------------- */
static mcnn_status load_hf(mcnn_tokenizer *t, const char *vtext, size_t vlen, const char *vpath,
                           const char *mtext, size_t mlen, const char *mpath)
{
    MCNN_TRY(check_utf8(mtext, mlen, mpath));
    mcnn_json_doc doc;
    mcnn_status st = mcnn_json_parse(&doc, vtext, vlen);
    if (st != MCNN_OK) return mcnn_wrap_error(st, "%s: ", vpath);
    const mcnn_json *root = doc.root;
    if (root->type != MCNN_JSON_OBJECT) {
        mcnn_json_free(&doc);
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: expected an object of token -> id, found %s",
                              vpath, mcnn_json_type_name(root->type));
    }
    size_t a, b;
    strip_utf8(mtext, mlen, &a, &b); /* HF reads merges.txt with .strip() */
    line *lines = malloc(N_MERGES_MAX * sizeof *lines);
    char *buf = malloc(mlen + 1);
    size_t nm = 0;
    if (!lines || !buf) st = mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory", mpath);
    else nm = merge_lines(lines, mtext + a, b - a);
    if (st == MCNN_OK) st = tables_init(t, root->count, nm);
    for (const mcnn_json *m = root->child; m && st == MCNN_OK; m = m->next) {
        if (m->type != MCNN_JSON_NUMBER || !m->is_int || m->i < 0 || m->i >= MAX_IDS)
            st = mcnn_set_error(MCNN_ERR_FORMAT,
                                "%s: token '%.64s' has a %s id, expected an integer in [0, %d)",
                                vpath, m->key, mcnn_json_type_name(m->type), MAX_IDS);
        else
            st = add_symbol(t, m->key, m->key_len, (int32_t)m->i, NULL);
    }
    mcnn_json_free(&doc);
    for (size_t k = 0; k < nm && st == MCNN_OK; k++) {
        line parts[2];
        if (split_ws(lines[k].s, lines[k].len, parts) != 2) continue; /* can never match a pair */
        int pa = mcnn_bpe_find(t, parts[0].s, parts[0].len);
        int pb = mcnn_bpe_find(t, parts[1].s, parts[1].len);
        if (pa < 0 || pb < 0) continue; /* never a symbol, so never a pair */
        size_t jl = join_parts(buf, lines[k].s, lines[k].len);
        int ab = mcnn_bpe_find(t, buf, jl);
        if (ab < 0)
            st = mcnn_set_error(MCNN_ERR_FORMAT,
                                "%s: line %zu merges '%.*s' and '%.*s' into '%.*s', which %s lacks",
                                mpath, k + 2, (int)parts[0].len, parts[0].s, (int)parts[1].len,
                                parts[1].s, (int)jl, buf, vpath);
        else
            add_pair(t, pa, pb, (int32_t)k, ab);
    }
    free(lines), free(buf);
    if (st == MCNN_OK) st = base_symbols(t, vpath);
    if (st == MCNN_OK) st = build_decoder(t);
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

mcnn_status mcnn_tokenizer_load_hf(mcnn_tokenizer **out, const char *vocab_path,
                                   const char *merges_path)
{
    if (!out || !vocab_path || !merges_path)
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_tokenizer_load_hf: NULL argument");
    *out = NULL;
    unsigned char *v = NULL, *m = NULL;
    size_t vn = 0, mn = 0;
    MCNN_TRY(mcnn_read_file_maybe_gzip(&v, &vn, vocab_path));
    mcnn_status st = mcnn_read_file_maybe_gzip(&m, &mn, merges_path);
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

mcnn_status mcnn_tokenizer_load(mcnn_tokenizer **out, const char *path)
{
    if (!out || !path) return mcnn_set_error(MCNN_ERR_ARG, "mcnn_tokenizer_load: NULL argument");
    *out = NULL;
    unsigned char *text = NULL;
    size_t n = 0;
    MCNN_TRY(mcnn_read_file_maybe_gzip(&text, &n, path));
    mcnn_status st;
    if (looks_like_json(text, n)) {
        free(text);
        /* merges.txt in the same folder */
        const char *slash = strrchr(path, '/');
        size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
        char *mp = malloc(dir + sizeof "merges.txt");
        if (!mp) return mcnn_set_error(MCNN_ERR_NOMEM, "tokenizer: no memory");
        memcpy(mp, path, dir);
        memcpy(mp + dir, "merges.txt", sizeof "merges.txt");
        st = mcnn_tokenizer_load_hf(out, path, mp);
        free(mp);
        return st;
    }
    mcnn_tokenizer *t = NULL;
    st = new_tokenizer(&t);
    if (st == MCNN_OK) st = load_openai(t, (const char *)text, n, path);
    free(text);
    return finish(out, t, st);
}
