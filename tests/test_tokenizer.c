/* The CLIP BPE tokenizer against two judges:
 *  - OpenAI's own clip.tokenize, through $MCNN_SHARED/ref/tokens_movieclip.safetensors (179
 *    MovieCLIP prompts; needs the shared vocabulary bpe_simple_vocab_16e6.txt.gz);
 *  - a Python tokenizer written from OpenAI's algorithm (tests/ref/gen_tokenizer.py, which
 *    checks itself against the file above before writing anything) on tricky strings: accents,
 *    CJK, emoji, HTML entities, whitespace of every kind, final sigma, contractions, literal
 *    special tokens, truncation; decode of invalid UTF-8; and small Hugging Face and OpenAI
 *    vocabularies (tests/data/tokenizer_hf*), which need no shared file. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"

#include <unistd.h>

#include "../lib/text/unicode.h"      /* the exhaustive per-code-point check */
#include "../lib/text/bpe_internal.h" /* the two merge loops, compared */

#define CORPUS "tests/data/tokenizer_corpus.safetensors"
#define HF_GOLDEN "tests/data/tokenizer_hf.safetensors"
#define HF_DIR "tests/data/tokenizer_hf/"
#define HF_SHUFFLED_DIR "tests/data/tokenizer_hf_shuffled/"
#define SMALL_VOCAB (512 + 300 + 2) /* the small vocabularies: the first 300 official merges */

static mcnn_tokenizer *g_tok; /* the full vocabulary, NULL when the shared file is absent */
static double g_load_seconds;

/* ---- reading the goldens ------------------------------------------------------------------ */
typedef struct strings {
    char *bytes;    /* all strings back to back */
    int32_t *off;   /* (n + 1) */
    int n;
} strings;

static char *read_bytes(mcnn_safetensors *st, const char *name, size_t *len)
{
    size_t n = 0;
    int32_t *v = test_golden_i32(st, name, &n);
    if (!v) return NULL;
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++) s[i] = (char)v[i];
    s[n] = '\0';
    free(v);
    if (len) *len = n;
    return s;
}

static int read_strings(mcnn_safetensors *st, const char *prefix, strings *out)
{
    char name[96];
    size_t n = 0;
    snprintf(name, sizeof name, "%s_bytes", prefix);
    out->bytes = read_bytes(st, name, NULL);
    snprintf(name, sizeof name, "%s_off", prefix);
    out->off = test_golden_i32(st, name, &n);
    out->n = (int)n - 1;
    return out->bytes && out->off;
}

/* The i-th string, NUL-terminated in a fresh buffer (free() it). */
static char *string_at(const strings *s, int i)
{
    int len = s->off[i + 1] - s->off[i];
    char *p = malloc((size_t)len + 1);
    memcpy(p, s->bytes + s->off[i], (size_t)len);
    p[len] = '\0';
    return p;
}

static void free_strings(strings *s)
{
    free(s->bytes);
    free(s->off);
}

static mcnn_safetensors *open_golden(const char *path)
{
    mcnn_safetensors *st = NULL;
    mcnn_status s = mcnn_safetensors_open(&st, path);
    TEST_ASSERT(s == MCNN_OK, "%s", mcnn_last_error());
    return s == MCNN_OK ? st : NULL;
}

/* Check encode of every corpus string against ids[off[i] .. off[i+1]). */
static void check_encode(const mcnn_tokenizer *tok, const strings *text, const int32_t *ids,
                         const int32_t *off, const char *what)
{
    for (int i = 0; i < text->n; i++) {
        char *s = string_at(text, i);
        int want = off[i + 1] - off[i], n = -1;
        int32_t got[2048];
        mcnn_status st = mcnn_tokenizer_encode(tok, s, got, 2048, &n);
        TEST_ASSERT(st == MCNN_OK, "%s: encode string %d: %s", what, i, mcnn_last_error());
        TEST_ASSERT(n == want, "%s: string %d ('%.30s'): %d ids, want %d", what, i, s, n, want);
        for (int k = 0; k < n && k < want; k++)
            if (got[k] != ids[off[i] + k]) {
                TEST_ASSERT(0, "%s: string %d ('%.30s') id %d: got %d want %d", what, i, s, k,
                            got[k], ids[off[i] + k]);
                break;
            }
        free(s);
    }
}

/* Check tokenize(context, truncate=1) rows and lengths. */
static void check_tokenize(const mcnn_tokenizer *tok, const strings *text, const int32_t *rows,
                           const int32_t *lengths, int context, const char *what)
{
    int32_t got[77];
    for (int i = 0; i < text->n; i++) {
        char *s = string_at(text, i);
        int len = -1;
        TEST_OK(mcnn_tokenizer_tokenize(tok, s, got, context, 1, &len));
        if (lengths) TEST_ASSERT(len == lengths[i], "%s: string %d length %d want %d", what, i, len,
                                 lengths[i]);
        for (int k = 0; k < context; k++)
            if (got[k] != rows[(size_t)i * context + k]) {
                TEST_ASSERT(0, "%s: string %d ('%.30s') position %d: got %d want %d", what, i, s,
                            k, got[k], rows[(size_t)i * context + k]);
                break;
            }
        free(s);
    }
}

static void check_decode(const mcnn_tokenizer *tok, const strings *want, const int32_t *ids,
                         const int32_t *off, const char *what)
{
    for (int i = 0; i < want->n; i++) {
        char *text = NULL, *w = string_at(want, i);
        TEST_OK(mcnn_tokenizer_decode(tok, ids + off[i], off[i + 1] - off[i], &text));
        TEST_ASSERT(text && strcmp(text, w) == 0, "%s: sequence %d decodes to '%s', want '%s'",
                    what, i, text ? text : "(null)", w);
        free(text), free(w);
    }
}

/* ---- (1) OpenAI's clip.tokenize on the MovieCLIP prompts ------------------------------------ */
static void test_movieclip(void)
{
    char tax[1024];
    snprintf(tax, sizeof tax, "%s", test_shared_path("data/movieclip/taxonomy-179.txt"));
    const char *ref = test_shared_path("ref/tokens_movieclip.safetensors");
    FILE *f = fopen(tax, "rb");
    if (!g_tok || !f || access(ref, R_OK) != 0) {
        if (f) fclose(f);
        TEST_SKIP("shared vocabulary, taxonomy-179.txt or tokens_movieclip.safetensors absent "
                  "(MCNN_SHARED=%s)", test_shared_path(""));
        return;
    }
    mcnn_safetensors *st = open_golden(ref);
    if (!st) {
        fclose(f);
        return;
    }
    size_t nt = 0, nl = 0, ne = 0;
    int32_t *tokens = test_golden_i32(st, "tokens", &nt);
    int32_t *lengths = test_golden_i32(st, "lengths", &nl);
    int32_t *eot_index = test_golden_i32(st, "eot_index", &ne);
    TEST_ASSERT(nt == 179 * 77 && nl == 179 && ne == 179, "reference shapes");
    char line[256], prompt[400];
    int32_t got[77];
    int row = 0;
    double t0 = mcnn_seconds();
    while (tokens && lengths && eot_index && fgets(line, sizeof line, f) && row < 179) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0]) continue;
        snprintf(prompt, sizeof prompt, "a photo of a %s, a type of background location", line);
        int len = 0;
        TEST_OK(mcnn_tokenizer_tokenize(g_tok, prompt, got, 77, 0, &len));
        int argmax = 0;
        for (int k = 0; k < 77; k++) {
            if (got[k] > got[argmax]) argmax = k;
            if (got[k] != tokens[row * 77 + k]) {
                TEST_ASSERT(0, "prompt %d ('%s') position %d: got %d want %d", row, prompt, k,
                            got[k], tokens[row * 77 + k]);
                break;
            }
        }
        TEST_ASSERT(len == lengths[row], "prompt %d: length %d want %d", row, len, lengths[row]);
        TEST_ASSERT(argmax == eot_index[row] && argmax == len - 1,
                    "prompt %d: EOT at %d want %d", row, argmax, eot_index[row]);
        row++;
    }
    double dt = mcnn_seconds() - t0;
    TEST_ASSERT(row == 179, "read %d prompts from %s, want 179", row, tax);
    fprintf(stderr, "  vocabulary loaded in %.1f ms; 179 prompts tokenized in %.2f ms\n",
            1e3 * g_load_seconds, 1e3 * dt);
    fclose(f);
    free(tokens), free(lengths), free(eot_index);
    mcnn_safetensors_close(st);
}

static void test_known_values(void)
{
    if (!g_tok) {
        TEST_SKIP("shared vocabulary absent");
        return;
    }
    /* SimpleTokenizer's vocabulary: 256 + 256 + 48894 merges + 2 specials; id 0 is "!" */
    TEST_ASSERT(mcnn_tokenizer_vocab_size(g_tok) == 49408, "vocab size %d",
                mcnn_tokenizer_vocab_size(g_tok));
    TEST_ASSERT(mcnn_tokenizer_sot(g_tok) == 49406 && mcnn_tokenizer_eot(g_tok) == 49407,
                "specials %d %d", mcnn_tokenizer_sot(g_tok), mcnn_tokenizer_eot(g_tok));
    int32_t zero = 0, ids[8];
    char *text = NULL;
    TEST_OK(mcnn_tokenizer_decode(g_tok, &zero, 1, &text));
    TEST_ASSERT(text && strcmp(text, "!") == 0, "id 0 decodes to '%s'", text ? text : "");
    free(text);
    int n = 0;
    TEST_OK(mcnn_tokenizer_encode(g_tok, "a photo of a cat", ids, 8, &n));
    const int32_t want[5] = {320, 1125, 539, 320, 2368}; /* the example in tokenizer.h */
    TEST_ASSERT(n == 5 && memcmp(ids, want, sizeof want) == 0, "a photo of a cat: %d ids", n);
}

/* ---- (2) the Python judge on the corpus ------------------------------------------------------ */
static void test_corpus(void)
{
    if (!g_tok) {
        TEST_SKIP("shared vocabulary absent");
        return;
    }
    mcnn_safetensors *st = open_golden(CORPUS);
    if (!st) return;
    strings text = {0};
    size_t n = 0;
    if (read_strings(st, "text", &text)) {
        int32_t *ids = test_golden_i32(st, "ids", NULL), *off = test_golden_i32(st, "ids_off", NULL);
        int32_t *t77 = test_golden_i32(st, "tokens77", NULL), *l77 = test_golden_i32(st, "lengths77", NULL);
        int32_t *t8 = test_golden_i32(st, "tokens8", NULL), *l8 = test_golden_i32(st, "lengths8", NULL);
        int32_t *too_long = test_golden_i32(st, "too_long", &n);
        if (ids && off && t77 && l77 && t8 && l8 && too_long) {
            check_encode(g_tok, &text, ids, off, "corpus");
            check_tokenize(g_tok, &text, t77, l77, 77, "context 77");
            check_tokenize(g_tok, &text, t8, l8, 8, "context 8");
            /* truncate = 0: refused exactly when clip.tokenize raises */
            int refused = 0;
            for (int i = 0; i < text.n; i++) {
                char *s = string_at(&text, i);
                int32_t row[77];
                mcnn_status r = mcnn_tokenizer_tokenize(g_tok, s, row, 77, 0, NULL);
                TEST_ASSERT((r == MCNN_ERR_ARG) == (too_long[i] != 0),
                            "string %d: truncate=0 gives '%s', Python %s", i, mcnn_strerror(r),
                            too_long[i] ? "raises" : "does not");
                refused += r != MCNN_OK;
                free(s);
            }
            TEST_ASSERT(refused > 0, "the corpus has a text too long for 77");
        }
        free(ids), free(off), free(t77), free(l77), free(t8), free(l8), free(too_long);
    }
    free_strings(&text);
    mcnn_safetensors_close(st);
}

static void test_clean(void)
{
    mcnn_safetensors *st = open_golden(CORPUS);
    if (!st) return;
    strings text = {0}, clean = {0};
    if (read_strings(st, "text", &text) && read_strings(st, "clean", &clean)) {
        for (int i = 0; i < text.n; i++) {
            char *s = string_at(&text, i), *w = string_at(&clean, i), *got = NULL;
            TEST_OK(mcnn_tokenizer_clean(s, &got));
            TEST_ASSERT(got && strcmp(got, w) == 0, "string %d: cleaned to '%s', want '%s'", i,
                        got ? got : "(null)", w);
            free(s), free(w), free(got);
        }
    }
    free_strings(&text), free_strings(&clean);
    mcnn_safetensors_close(st);
}

/* Remove spaces, and U+0345 (which the pattern drops), from s in place. */
static void squeeze(char *s)
{
    char *o = s;
    for (char *p = s; *p;) {
        if (*p == ' ') p++;
        else if ((unsigned char)p[0] == 0xCD && (unsigned char)p[1] == 0x85) p += 2;
        else *o++ = *p++;
    }
    *o = '\0';
}

/* ---- (3) round trips ------------------------------------------------------------------------- */
static void test_round_trip(void)
{
    if (!g_tok) {
        TEST_SKIP("shared vocabulary absent");
        return;
    }
    mcnn_safetensors *st = open_golden(CORPUS);
    if (!st) return;
    strings text = {0}, decoded = {0}, dec_text = {0};
    int32_t *dec_ids = test_golden_i32(st, "dec_ids", NULL);
    int32_t *dec_off = test_golden_i32(st, "dec_ids_off", NULL);
    if (read_strings(st, "text", &text) && read_strings(st, "decoded", &decoded)) {
        for (int i = 0; i < text.n; i++) {
            char *s = string_at(&text, i), *w = string_at(&decoded, i), *got = NULL, *clean = NULL;
            int32_t ids[2048];
            int n = 0;
            TEST_OK(mcnn_tokenizer_encode(g_tok, s, ids, 2048, &n));
            TEST_OK(mcnn_tokenizer_decode(g_tok, ids, n, &got));
            TEST_OK(mcnn_tokenizer_clean(s, &clean));
            TEST_ASSERT(got && strcmp(got, w) == 0, "string %d: decode(encode) '%s', Python '%s'",
                        i, got ? got : "", w);
            /* decode(encode(s)) is the cleaned, lower-cased s, with a space after every piece */
            if (got && clean) {
                squeeze(got), squeeze(clean);
                TEST_ASSERT(strcmp(got, clean) == 0, "string %d: '%s' != '%s' without spaces", i,
                            got, clean);
            }
            free(s), free(w), free(got), free(clean);
        }
    }
    /* byte-level id sequences that are not valid UTF-8: Python's errors="replace" */
    if (dec_ids && dec_off && read_strings(st, "dec_text", &dec_text))
        check_decode(g_tok, &dec_text, dec_ids, dec_off, "decode");
    free(dec_ids), free(dec_off);
    free_strings(&text), free_strings(&decoded), free_strings(&dec_text);
    mcnn_safetensors_close(st);
}

/* Every HTML5 entity, longest-prefix matches and numeric fix-ups, through the cleaning. */
static void test_html_entities(void)
{
    mcnn_safetensors *st = open_golden(CORPUS);
    if (!st) return;
    strings text = {0}, clean = {0};
    if (read_strings(st, "html_text", &text) && read_strings(st, "html_clean", &clean)) {
        for (int i = 0; i < text.n; i++) {
            char *s = string_at(&text, i), *w = string_at(&clean, i), *got = NULL;
            TEST_OK(mcnn_tokenizer_clean(s, &got));
            int ok = got && strcmp(got, w) == 0;
            if (!ok && got) { /* show where they part */
                size_t k = 0;
                while (got[k] && got[k] == w[k]) k++;
                size_t from = k > 30 ? k - 30 : 0;
                TEST_ASSERT(0, "html string %d differs at byte %zu: got '%.60s' want '%.60s'", i, k,
                            got + from, w + from);
            }
            free(s), free(w), free(got);
        }
    }
    free_strings(&text), free_strings(&clean);
    mcnn_safetensors_close(st);
}

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static size_t put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
    return 4;
}

/* All 1.1 million code points: the pattern's class, str.isspace, str.lower and the Final_Sigma
 * rule, against CRC-32s the generator computed straight from Python's regex and str. */
static void test_unicode_exhaustive(void)
{
    mcnn_safetensors *st = open_golden(CORPUS);
    if (!st) return;
    size_t nb = 0;
    int32_t *want = test_golden_i32(st, "unicode_crc", &nb);
    TEST_ASSERT(nb == 0x110000 / 4096, "%zu blocks", nb);
    static const int cls_code[] = {[MCNN_U_OTHER] = 0, [MCNN_U_LETTER] = 1, [MCNN_U_NUMBER] = 2,
                                   [MCNN_U_SPACE] = 3, [MCNN_U_NONE] = 4};
    unsigned char *buf = malloc(4096 * 32);
    int bad = 0;
    for (size_t b = 0; want && b < nb; b++) {
        size_t len = 0;
        for (uint32_t cp = (uint32_t)b * 4096; cp < (uint32_t)(b + 1) * 4096; cp++) {
            if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) continue;
            uint32_t lo[3], probe[9];
            size_t n = mcnn_u_lower_str(lo, &cp, 1);
            const uint32_t ctx1[3] = {'A', 0x3A3, cp}, ctx2[2] = {cp, 0x3A3};
            mcnn_u_lower_str(probe, ctx1, 3);
            uint32_t p1 = probe[1];
            size_t m = mcnn_u_lower_str(probe, ctx2, 2);
            uint32_t p2 = probe[m - 1];
            buf[len++] = (unsigned char)cls_code[mcnn_u_class(cp)];
            buf[len++] = (unsigned char)mcnn_u_is_space_py(cp);
            buf[len++] = (unsigned char)n;
            for (size_t k = 0; k < n; k++) len += put_u32(buf + len, lo[k]);
            len += put_u32(buf + len, p1);
            len += put_u32(buf + len, p2);
        }
        uint32_t got = crc32_update(0, buf, len);
        if (got != (uint32_t)want[b] && bad++ < 5)
            TEST_ASSERT(0, "code points U+%04zX..U+%04zX differ from Python", b * 4096,
                        b * 4096 + 4095);
    }
    free(buf), free(want);
    mcnn_safetensors_close(st);
}

/* The heap merge (long pieces) against Python's loop as written, on random words over small
 * alphabets (so that many merges apply), both sides of the length where the library switches. */
static void check_merge_twins(const mcnn_tokenizer *tok, const char *what)
{
    enum { MAXLEN = 400 };
    static const char *alphabets[] = {"ab", "aab", "etaoinshrdlu", "thequickbrownfoxjumps",
                                      "\xc3\xa9\x61", "!?.", "0123456789", "cd!"};
    int *w1 = malloc(MAXLEN * sizeof *w1), *w2 = malloc(MAXLEN * sizeof *w2);
    int *links = malloc(3 * MAXLEN * sizeof *links);
    uint64_t *heap = malloc(3 * MAXLEN * sizeof *heap);
    unsigned x = 12345;
    int bad = 0;
    for (int trial = 0; trial < 600 && bad < 3; trial++) {
        const char *alpha = alphabets[trial % 8];
        size_t na = strlen(alpha), m = 1 + (size_t)(trial * 37 % MAXLEN);
        for (size_t i = 0; i < m; i++) {
            x = x * 1103515245u + 12345u;
            unsigned char byte = (unsigned char)alpha[(x >> 16) % na];
            w1[i] = i + 1 < m ? tok->byte_sym[byte] : tok->byte_sym_eow[byte];
        }
        memcpy(w2, w1, m * sizeof *w1);
        size_t n1 = mcnn_bpe_merge_plain(tok, w1, m);
        size_t n2 = mcnn_bpe_merge_heap(tok, w2, m, links, heap);
        if (n1 != n2 || memcmp(w1, w2, n1 * sizeof *w1) != 0) {
            bad++;
            TEST_ASSERT(0, "%s: trial %d (%zu symbols over '%s'): plain gives %zu, heap %zu", what,
                        trial, m, alpha, n1, n2);
        }
    }
    free(w1), free(w2), free(links), free(heap);
}

/* Real merge lists are learned in order (a merge's parts come from earlier merges), so a new
 * pair never outranks the one being merged.  A scrambled list breaks that, and with it any merge
 * loop that does not finish one pair everywhere before the next ("abab": Python gives ab ab).
 * The list is still a valid vocabulary (every part some merge's result, no repeats); only the
 * order of its merges is shuffled. */
static mcnn_tokenizer *scrambled_vocab(void)
{
    enum { N = 300, MAXTOK = 16 };
    /* the tokens over {c, d, !}, inside a word (tok[0]) and at its end (tok[1], "</w>" last):
     * the byte tokens, then each merge's result */
    static char tok[2][N + 3][MAXTOK];
    static char merges[N][2 * MAXTOK + 2];
    int ntok[2] = {3, 3}, nm = 0;
    for (int i = 0; i < 3; i++) snprintf(tok[0][i], MAXTOK, "%c", "cd!"[i]);
    for (int i = 0; i < 3; i++) snprintf(tok[1][i], MAXTOK, "%c</w>", "cd!"[i]);
    unsigned x = 99;
    while (nm < N) { /* learn: join a token and an inner or a word-end token into a new one */
        x = x * 1103515245u + 12345u;
        int end = (x >> 16) % 3 == 0;
        x = x * 1103515245u + 12345u;
        const char *a = tok[0][(x >> 16) % (unsigned)ntok[0]];
        x = x * 1103515245u + 12345u;
        const char *b = tok[end][(x >> 16) % (unsigned)ntok[end]];
        char joined[2 * MAXTOK];
        snprintf(joined, sizeof joined, "%s%s", a, b);
        int seen = strlen(joined) >= MAXTOK; /* keep tokens short */
        for (int k = 0; k < ntok[end] && !seen; k++) seen = strcmp(tok[end][k], joined) == 0;
        if (seen) continue;
        snprintf(merges[nm++], sizeof merges[0], "%s %s", a, b);
        memcpy(tok[end][ntok[end]++], joined, MAXTOK);
    }
    for (int i = N - 1; i > 0; i--) { /* then shuffle the ranks */
        x = x * 1103515245u + 12345u;
        int j = (int)((x >> 16) % (unsigned)(i + 1));
        char t[sizeof merges[0]];
        memcpy(t, merges[i], sizeof t), memcpy(merges[i], merges[j], sizeof t);
        memcpy(merges[j], t, sizeof t);
    }
    char dir[] = "/tmp/mcnn_tok_XXXXXX", path[64];
    if (!mkdtemp(dir)) return NULL;
    snprintf(path, sizeof path, "%s/scrambled.txt", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    fprintf(f, "#version: 0.2\nab a\na b\nb a\nba b\n"); /* the "abab" case first */
    for (int i = 0; i < N; i++) fprintf(f, "%s\n", merges[i]);
    fclose(f);
    mcnn_tokenizer *tok_ = NULL;
    TEST_OK(mcnn_tokenizer_load_merges(&tok_, path, 512 + 4 + N + 2));
    remove(path);
    rmdir(dir);
    return tok_;
}

static void test_merge_twins(void)
{
    mcnn_tokenizer *small = NULL, *scrambled = scrambled_vocab();
    TEST_OK(mcnn_tokenizer_load_merges(&small, HF_DIR "bpe_small.txt.gz", SMALL_VOCAB));
    if (small) check_merge_twins(small, "300 merges");
    if (scrambled) {
        check_merge_twins(scrambled, "scrambled merges");
        /* the case spelled out: "ababx" is ab ab x</w>, not aba b x</w> */
        int w[5], links[15];
        uint64_t heap[15];
        const char *word = "ababx";
        for (int i = 0; i < 5; i++)
            w[i] = i < 4 ? scrambled->byte_sym[(int)word[i]] : scrambled->byte_sym_eow[(int)word[i]];
        size_t n = mcnn_bpe_merge_heap(scrambled, w, 5, links, heap);
        int ab = mcnn_bpe_find(scrambled, "ab", 2);
        TEST_ASSERT(n == 3 && w[0] == ab && w[1] == ab, "ababx: %zu symbols", n);
    }
    mcnn_tokenizer_free(small);
    mcnn_tokenizer_free(scrambled);
    if (g_tok) check_merge_twins(g_tok, "full vocabulary");
}

/* ---- (4) small Hugging Face and OpenAI-format vocabularies ----------------------------------- */
/* merges: vocab.json's merges.txt (vocab.json at path), or NULL; vocab_size: 0 for
 * mcnn_tokenizer_load, else path is a merges file for that many tokens. */
static void check_small(const char *path, const char *merges, int vocab_size, const char *name)
{
    mcnn_tokenizer *tok = NULL;
    mcnn_status s = merges       ? mcnn_tokenizer_load_hf(&tok, path, merges)
                    : vocab_size ? mcnn_tokenizer_load_merges(&tok, path, vocab_size)
                                 : mcnn_tokenizer_load(&tok, path);
    TEST_ASSERT(s == MCNN_OK, "%s: %s", path, mcnn_last_error());
    mcnn_safetensors *st = open_golden(HF_GOLDEN);
    if (!tok || !st) {
        mcnn_tokenizer_free(tok);
        if (st) mcnn_safetensors_close(st);
        return;
    }
    char key[64];
    strings text = {0}, dec = {0};
    snprintf(key, sizeof key, "%s_ids", name);
    int32_t *ids = test_golden_i32(st, key, NULL);
    snprintf(key, sizeof key, "%s_ids_off", name);
    int32_t *off = test_golden_i32(st, key, NULL);
    snprintf(key, sizeof key, "%s_tokens77", name);
    int32_t *rows = test_golden_i32(st, key, NULL);
    snprintf(key, sizeof key, "%s_specials", name);
    int32_t *sp = test_golden_i32(st, key, NULL);
    snprintf(key, sizeof key, "%s_decoded", name);
    if (ids && off && rows && sp && read_strings(st, "text", &text) &&
        read_strings(st, key, &dec)) {
        TEST_ASSERT(mcnn_tokenizer_sot(tok) == sp[0] && mcnn_tokenizer_eot(tok) == sp[1] &&
                    mcnn_tokenizer_vocab_size(tok) == sp[2],
                    "%s: sot %d eot %d size %d, want %d %d %d", path, mcnn_tokenizer_sot(tok),
                    mcnn_tokenizer_eot(tok), mcnn_tokenizer_vocab_size(tok), sp[0], sp[1], sp[2]);
        check_encode(tok, &text, ids, off, path);
        check_tokenize(tok, &text, rows, NULL, 77, path);
        check_decode(tok, &dec, ids, off, path);
    }
    free(ids), free(off), free(rows), free(sp);
    free_strings(&text), free_strings(&dec);
    mcnn_safetensors_close(st);
    mcnn_tokenizer_free(tok);
}

static void test_hf_vocab_json(void)
{
    check_small(HF_DIR "vocab.json", NULL, 0, "hf");                    /* finds merges.txt */
    check_small(HF_DIR "vocab.json", HF_DIR "merges.txt", 0, "hf");     /* explicit pair    */
    check_small(HF_SHUFFLED_DIR "vocab.json", NULL, 0, "shuffled");     /* ids from the JSON */
}

/* A merges file alone for a vocabulary other than CLIP's needs its size stated.  Python's
 * SimpleTokenizer would read HF's merges.txt or a gzip ending in a newline with an extra empty
 * token (the "nl" golden: shifted special ids); with the size given, the empty last line is
 * not a merge, and all three give the ids of vocab.json. */
static void test_openai_small(void)
{
    check_small(HF_DIR "bpe_small.txt.gz", NULL, SMALL_VOCAB, "gz");
    check_small(HF_DIR "merges.txt", NULL, SMALL_VOCAB, "gz");
    check_small(HF_DIR "bpe_small_nl.txt.gz", NULL, SMALL_VOCAB, "gz");
}

/* ---- errors ------------------------------------------------------------------------------------ */
static int write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static int write_str(const char *path, const char *s) { return write_file(path, s, strlen(s)); }

static void expect_load_error(const char *path, mcnn_status want, const char *needle)
{
    mcnn_tokenizer *tok = (mcnn_tokenizer *)&tok; /* must come back NULL */
    mcnn_status s = mcnn_tokenizer_load(&tok, path);
    TEST_ASSERT(s == want && tok == NULL, "%s: got '%s' (%s), want '%s'", path, mcnn_strerror(s),
                mcnn_last_error(), mcnn_strerror(want));
    TEST_ASSERT(strstr(mcnn_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", path,
                mcnn_last_error(), needle);
    if (s == MCNN_OK) mcnn_tokenizer_free(tok);
}

static void test_load_errors(void)
{
    char dir[] = "/tmp/mcnn_tok_XXXXXX", path[256], merges[256];
    if (!mkdtemp(dir)) {
        TEST_ASSERT(0, "mkdtemp failed");
        return;
    }
    snprintf(path, sizeof path, "%s/missing.txt.gz", dir);
    expect_load_error(path, MCNN_ERR_IO, "missing.txt.gz");

    /* a gzip header followed by garbage */
    const unsigned char bad_gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0x13,
                                    0x37, 0, 0, 0, 0, 0, 0, 0, 0};
    snprintf(path, sizeof path, "%s/corrupt.txt.gz", dir);
    TEST_ASSERT(write_file(path, bad_gz, sizeof bad_gz), "write %s", path);
    expect_load_error(path, MCNN_ERR_FORMAT, "corrupt.txt.gz");

    /* vocab.json alone */
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    const char *vj = "{\"a\": 0}";
    TEST_ASSERT(write_str(path, vj), "write %s", path);
    expect_load_error(path, MCNN_ERR_IO, "merges.txt");

    /* merges.txt beside it, and as many tokens as 1 merge needs, but not the byte tokens */
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    TEST_ASSERT(write_str(merges, "#version: 0.2\na b\n"), "write %s", merges);
    char *vj515 = malloc(515 * 16 + 2), *p = vj515;
    p += sprintf(p, "{");
    for (int i = 0; i < 515; i++) p += sprintf(p, "%s\"t%d\": %d", i ? ", " : "", i, i);
    sprintf(p, "}");
    TEST_ASSERT(write_str(path, vj515), "write %s", path);
    expect_load_error(path, MCNN_ERR_FORMAT, "lacks the token for byte");

    /* a string id, and a document that is not an object */
    memcpy(strstr(vj515, "\"t7\": 7"), "\"t7\":\"\"", 7); /* a string id, same length */
    TEST_ASSERT(write_str(path, vj515), "write %s", path);
    expect_load_error(path, MCNN_ERR_FORMAT, "'t7'");
    free(vj515);
    TEST_ASSERT(write_str(path, "{\"a\": 0"), "write %s", path);
    expect_load_error(path, MCNN_ERR_FORMAT, "vocab.json");

    /* a merges file that is not UTF-8 */
    snprintf(path, sizeof path, "%s/bad_utf8.txt", dir);
    TEST_ASSERT(write_str(path, "#version\ni n\n\xff\xfe x\n"), "write %s", path);
    expect_load_error(path, MCNN_ERR_FORMAT, "UTF-8");

    const char *files[] = {"corrupt.txt.gz", "vocab.json", "merges.txt", "bad_utf8.txt"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        remove(path);
    }
    rmdir(dir);
}

static void test_text_errors(void)
{
    mcnn_tokenizer *tok = NULL;
    TEST_OK(mcnn_tokenizer_load_merges(&tok, HF_DIR "bpe_small.txt.gz", SMALL_VOCAB));
    if (!tok) return;
    /* invalid UTF-8: stray continuation, overlong, surrogate, truncated, above U+10FFFF, 0xFF */
    const char *bad[] = {"ok \x80", "\xc0\xaf", "a\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80",
                         "caf\xe9", "\xff"};
    int32_t ids[77];
    int n = 0;
    for (int i = 0; i < 7; i++) {
        mcnn_status s = mcnn_tokenizer_encode(tok, bad[i], ids, 77, &n);
        TEST_ASSERT(s == MCNN_ERR_ARG && strstr(mcnn_last_error(), "UTF-8"),
                    "invalid UTF-8 %d: %s (%s)", i, mcnn_strerror(s), mcnn_last_error());
        s = mcnn_tokenizer_tokenize(tok, bad[i], ids, 77, 1, NULL);
        TEST_ASSERT(s == MCNN_ERR_ARG, "tokenize invalid UTF-8 %d", i);
        char *out = NULL;
        s = mcnn_tokenizer_clean(bad[i], &out);
        TEST_ASSERT(s == MCNN_ERR_ARG && out == NULL, "clean invalid UTF-8 %d", i);
    }
    /* a buffer too small reports the size needed and keeps what fits */
    mcnn_status s = mcnn_tokenizer_encode(tok, "hello world", ids, 1, &n);
    int need = n;
    TEST_ASSERT(s == MCNN_ERR_ARG && need > 1, "small buffer: %s, n = %d", mcnn_strerror(s), n);
    int32_t all[64];
    TEST_OK(mcnn_tokenizer_encode(tok, "hello world", all, 64, &n));
    TEST_ASSERT(n == need && all[0] == ids[0], "query then encode: %d vs %d", n, need);
    n = 0;
    TEST_ASSERT(mcnn_tokenizer_encode(tok, "hello world", NULL, 0, &n) == MCNN_ERR_ARG && n == need,
                "asking for the length with max_ids = 0: n = %d", n);
    /* bad ids and contexts */
    char *text = NULL;
    int32_t bad_id[2] = {5, 99999};
    TEST_ASSERT(mcnn_tokenizer_decode(tok, bad_id, 2, &text) == MCNN_ERR_ARG && !text,
                "decode of an unknown id");
    TEST_ASSERT(mcnn_tokenizer_tokenize(tok, "a", ids, 0, 1, NULL) == MCNN_ERR_ARG, "context 0");
    /* context 1 with truncation: [SOT] cut to one token, which becomes EOT (clip.tokenize) */
    int len = 0;
    TEST_OK(mcnn_tokenizer_tokenize(tok, "a", ids, 1, 1, &len));
    TEST_ASSERT(len == 1 && ids[0] == mcnn_tokenizer_eot(tok), "context 1");
    mcnn_tokenizer_free(tok);
}

int main(void)
{
    const char *vocab = test_shared_path("data/clip/bpe_simple_vocab_16e6.txt.gz");
    if (access(vocab, R_OK) == 0) {
        double t0 = mcnn_seconds();
        mcnn_status s = mcnn_tokenizer_load(&g_tok, vocab);
        g_load_seconds = mcnn_seconds() - t0;
        if (s != MCNN_OK) {
            fprintf(stderr, "FAIL loading %s: %s\n", vocab, mcnn_last_error());
            return 1;
        }
    } else {
        fprintf(stderr, "note: %s absent: the full-vocabulary tests are skipped\n", vocab);
    }
    TEST_RUN(test_movieclip);
    TEST_RUN(test_known_values);
    TEST_RUN(test_corpus);
    TEST_RUN(test_clean);
    TEST_RUN(test_round_trip);
    TEST_RUN(test_merge_twins);
    TEST_RUN(test_html_entities);
    TEST_RUN(test_unicode_exhaustive);
    TEST_RUN(test_hf_vocab_json);
    TEST_RUN(test_openai_small);
    TEST_RUN(test_load_errors);
    TEST_RUN(test_text_errors);
    mcnn_tokenizer_free(g_tok);
    return test_summary();
}
