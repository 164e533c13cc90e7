/* Bad text files: what the BPE vocabulary loader and the label-list reader refuse, row by row
 * as docs/bad-inputs.md lists them ("Text" section).  The judge is the behaviour issue 15
 * specifies: a message naming the file (and the line), an error status, nothing loaded.
 * Files are written to a temporary folder; the vocabulary rows that need the real CLIP file
 * ($MCNN_SHARED/data/clip/bpe_simple_vocab_16e6.txt.gz) are skipped when it is absent. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"

#include <unistd.h>

#define HF_DIR "tests/data/tokenizer_hf/"
#define CLIP_VOCAB "data/clip/bpe_simple_vocab_16e6.txt.gz"

static char g_dir[64];
static char g_path[256];

static const char *tmp(const char *name)
{
    snprintf(g_path, sizeof g_path, "%s/%s", g_dir, name);
    return g_path;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;
    if (f) ok = fclose(f) == 0 && ok;
    TEST_ASSERT(ok, "cannot write %s", path);
}

static void write_text(const char *path, const char *s) { write_bytes(path, s, strlen(s)); }

/* The message names want_file and contains every needle. */
static void expect_message(const char *want_file, const char *n1, const char *n2)
{
    const char *m = mcnn_last_error();
    TEST_ASSERT(strstr(m, want_file), "message '%s' does not name %s", m, want_file);
    TEST_ASSERT(!n1 || strstr(m, n1), "message '%s' lacks '%s'", m, n1);
    TEST_ASSERT(!n2 || strstr(m, n2), "message '%s' lacks '%s'", m, n2);
}

/* ---- gzip files made here, so that no test needs a gzip binary -------------------------------
 * A fixed-Huffman deflate block (RFC 1951 3.2.6): 4 literal zero bytes, then `matches` copies
 * of 258 bytes at distance 1: 13 bits for 258 bytes, the ratio of a zip bomb. */
typedef struct bitw {
    unsigned char *p;
    size_t n;
    unsigned acc, cnt;
} bitw;

static void put_bits(bitw *w, unsigned v, unsigned len) /* least significant bit first */
{
    for (unsigned i = 0; i < len; i++) {
        w->acc |= ((v >> i) & 1u) << w->cnt;
        if (++w->cnt == 8) w->p[w->n++] = (unsigned char)w->acc, w->acc = 0, w->cnt = 0;
    }
}

static void put_code(bitw *w, unsigned code, unsigned len) /* Huffman codes: most significant first */
{
    for (unsigned i = len; i-- > 0;) put_bits(w, (code >> i) & 1u, 1);
}

static uint32_t crc32_zeros(size_t n) /* CRC-32 of n zero bytes, bit by bit (independent) */
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) crc = table[crc & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* A gzip of 4 + 258 * matches zero bytes; the CRC is right when with_crc (slow for gigabytes). */
static size_t write_zeros_gz(const char *path, size_t matches, int with_crc)
{
    size_t cap = 32 + matches * 13 / 8;
    bitw w = {malloc(cap), 0, 0, 0};
    static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memcpy(w.p, header, 10);
    w.n = 10;
    put_bits(&w, 1, 1);                                  /* BFINAL */
    put_bits(&w, 1, 2);                                  /* BTYPE 01: fixed codes */
    for (int i = 0; i < 4; i++) put_code(&w, 0x30, 8);   /* literal 0 */
    for (size_t i = 0; i < matches; i++) {
        put_code(&w, 0xC5, 8);                           /* 285: length 258 */
        put_code(&w, 0, 5);                              /* distance code 0: distance 1 */
    }
    put_code(&w, 0, 7);                                  /* 256: end of block */
    if (w.cnt) put_bits(&w, 0, 8 - w.cnt);
    size_t out = 4 + 258 * matches;
    uint32_t crc = with_crc ? crc32_zeros(out) : 0, size = (uint32_t)out;
    for (int i = 0; i < 4; i++) w.p[w.n++] = (unsigned char)(crc >> (8 * i));
    for (int i = 0; i < 4; i++) w.p[w.n++] = (unsigned char)(size >> (8 * i));
    write_bytes(path, w.p, w.n);
    free(w.p);
    return out;
}

/* ---- the vocabulary ----------------------------------------------------------------------- */
static void expect_vocab_error(const char *path, int vocab_size, const char *n1, const char *n2)
{
    mcnn_tokenizer *tok = (mcnn_tokenizer *)&tok; /* must come back NULL */
    mcnn_status s = vocab_size ? mcnn_tokenizer_load_merges(&tok, path, vocab_size)
                               : mcnn_tokenizer_load(&tok, path);
    TEST_ASSERT(s != MCNN_OK && tok == NULL, "%s: loaded (%s)", path, mcnn_strerror(s));
    if (s == MCNN_OK) {
        mcnn_tokenizer_free(tok);
        return;
    }
    expect_message(path, n1, n2);
}

/* Files that are not a merges file at all, each refused by mcnn_tokenizer_load. */
static void test_vocab_not_merges(void)
{
    write_text(tmp("empty.txt"), "");
    expect_vocab_error(g_path, 0, "empty file", NULL);
    write_text(tmp("labels.txt"), "airport\nbeach\ncity street\n");
    expect_vocab_error(g_path, 0, ":1:", "'#version' header");
    write_text(tmp("words.txt"), "hello world\nthis is text\n"); /* two words a line, no header */
    expect_vocab_error(g_path, 0, ":1:", "'#version' header");
    unsigned char bin[4096];
    unsigned x = 7;
    for (size_t i = 0; i < sizeof bin; i++) x = x * 1103515245u + 12345u, bin[i] = (unsigned char)(x >> 16);
    bin[0] = 0x94; /* never gzip's magic, never UTF-8 */
    write_bytes(tmp("garbage.bin"), bin, sizeof bin);
    expect_vocab_error(g_path, 0, ":1:", "not valid UTF-8");
    /* the first 301 lines of the real file (the committed small vocabulary) */
    expect_vocab_error(HF_DIR "bpe_small.txt.gz", 0, "300 merges", "needs 48894");
    expect_vocab_error(HF_DIR "merges.txt", 0, "300 merges", "needs 48894");
    /* a folder */
    expect_vocab_error(g_dir, 0, "directory", NULL);
}

/* Zeros in a gzip: 1 MB is read and refused as text (no header); 1 GiB stops at the 64 MB
 * bound in a fraction of the time and memory it would take. */
static void test_vocab_gzip_bombs(void)
{
    size_t n = write_zeros_gz(tmp("zeros_1mb.txt.gz"), 4064, 1); /* 1 MB + 16 bytes */
    TEST_ASSERT(n == 4 + 258 * 4064, "size");
    expect_vocab_error(g_path, 0, ":1:", "'#version' header");
    write_zeros_gz(tmp("zeros_1gib.txt.gz"), ((size_t)1 << 30) / 258, 0); /* 1 GiB exactly */
    double t = mcnn_seconds();
    expect_vocab_error(g_path, 0, "inflates to more than 64 MB", NULL);
    t = mcnn_seconds() - t;
    fprintf(stderr, "  1 GiB of zeros (6.8 MB of gzip) refused in %.0f ms\n", t * 1e3);
    char vj[300];
    snprintf(vj, sizeof vj, "%s/vocab.json", g_dir);
    rename(g_path, vj); /* as vocab.json: refused before it is parsed */
    expect_vocab_error(vj, 0, "inflates to more than 64 MB", NULL);
    remove(vj);
}

/* The real file loads; its first 1000 lines do not (999 merges), nor does a copy with a line
 * of its first 48894 merges broken or repeated. */
static void test_vocab_real_file(void)
{
    const char *real = test_shared_path(CLIP_VOCAB);
    if (access(real, R_OK) != 0) {
        TEST_SKIP("%s absent", real);
        return;
    }
    mcnn_tokenizer *tok = NULL;
    TEST_OK(mcnn_tokenizer_load(&tok, real));
    TEST_ASSERT(mcnn_tokenizer_vocab_size(tok) == 49408, "the real file: %d tokens",
                mcnn_tokenizer_vocab_size(tok));
    mcnn_tokenizer_free(tok);
    unsigned char *text = NULL;
    size_t n = 0;
    TEST_OK(mcnn_read_file_maybe_gzip(&text, &n, real));
    if (!text) return;
    size_t cut = 0;
    for (int lines = 0; cut < n && lines < 1000; cut++) lines += text[cut] == '\n';
    write_bytes(tmp("head1000.txt"), text, cut);
    expect_vocab_error(g_path, 0, "999 merges", "needs 48894");
    /* the same 1000 lines are a valid vocabulary of 1513 tokens when the caller says so */
    TEST_OK(mcnn_tokenizer_load_merges(&tok, g_path, 512 + 999 + 2));
    TEST_ASSERT(mcnn_tokenizer_vocab_size(tok) == 1513, "%d tokens", mcnn_tokenizer_vocab_size(tok));
    mcnn_tokenizer_free(tok);
    /* line 3 ("t h") repeated as line 6 */
    const char *l3 = strstr((char *)text, "\nt h\n"), *l6 = text ? (char *)text : NULL;
    for (int k = 0; k < 5 && l6; k++) l6 = strchr(l6, '\n') + 1;
    if (l3 && l6 && (l6 - l3) > 5) {
        unsigned char *copy = malloc(n + 4);
        size_t at = (size_t)(l6 - (char *)text);
        memcpy(copy, text, at);
        memcpy(copy + at, "t h\n", 4);
        memcpy(copy + at + 4, text + at, n - at);
        write_bytes(tmp("repeat.txt"), copy, n + 4);
        expect_vocab_error(g_path, 0, ":6:", "the merge 't h' repeats line 3");
        free(copy);
    }
    free(text);
}

/* Merge lines that are not "a b" with known tokens, with the size stated so that the count
 * passes (each would otherwise also fail it). */
static void test_merges_format(void)
{
    static const struct {
        const char *text;
        int size;
        const char *n1, *n2;
    } cases[] = {
        {"#version: 0.2\na\tb\nab c\n", 516, ":2:", "one space"},
        {"#version: 0.2\na  b\nab c\n", 516, ":2:", "one space"},
        {"#version: 0.2\na b c\nab c\n", 516, ":2:", "one space"},
        {"#version: 0.2\na b\n\nab c\n", 516, ":3:", "one space"},
        {"#version: 0.2\na b\n b\n", 515 + 1, ":3:", "one space"},
        {"#version: 0.2\na b\nab zz\n", 516, ":3:", "'zz' is not a token"},
        {"#version: 0.2\na b\na b\n", 516, ":3:", "the merge 'a b' repeats line 2"},
        {"#version: 0.2\na b\nb c\nab c\na bc\n", 518, ":5:", "as line 4 does"},
        {"#version: 0.2\n< /\n</ w\n</w >\na </w>\n", 518, ":5:", "a byte token"},
        {"#version: 0.2\n<|start oftext|>\n", 515, ":2:", "a special token"},
        {"a b\nab c\n", 516, ":1:", "'#version' header"},
        {"#version: 0.2\na b\n", 517, "1 merges", "needs 3"},
        {"#version: 0.2\na b\xc0\n", 515, ":2:", "UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "merges_%zu.txt", i);
        write_text(tmp(name), cases[i].text);
        expect_vocab_error(g_path, cases[i].size, cases[i].n1, cases[i].n2);
    }
    /* what is accepted: CRLF line ends, lines past the stated size, any size in range */
    mcnn_tokenizer *tok = NULL;
    write_text(tmp("crlf.txt"), "#version: 0.2\r\na b\r\nab c\r\nnot a merge line at all\r\n");
    TEST_OK(mcnn_tokenizer_load_merges(&tok, g_path, 516));
    int32_t ids[8];
    int n = 0;
    if (tok) {
        TEST_OK(mcnn_tokenizer_encode(tok, "abcx", ids, 8, &n)); /* a b c x</w> -> abc x</w> */
        TEST_ASSERT(n == 2 && ids[0] == 513, "'abcx' with merges a b, ab c: %d ids, first %d", n,
                    ids[0]);
    }
    mcnn_tokenizer_free(tok);
    tok = (mcnn_tokenizer *)&tok;
    TEST_ASSERT(mcnn_tokenizer_load_merges(&tok, g_path, 513) == MCNN_ERR_ARG && !tok, "size 513");
    TEST_ASSERT(mcnn_tokenizer_load_merges(&tok, g_path, 49409) == MCNN_ERR_ARG, "size 49409");
    expect_vocab_error(HF_DIR "vocab.json", 814, "not a merges file", NULL);
}

/* Hugging Face pairs: vocab.json and merges.txt must describe the same vocabulary. */
static void expect_hf_error(const char *vocab, const char *merges, const char *n1, const char *n2)
{
    mcnn_tokenizer *tok = (mcnn_tokenizer *)&tok;
    mcnn_status s = mcnn_tokenizer_load_hf(&tok, vocab, merges);
    TEST_ASSERT(s != MCNN_OK && !tok, "%s + %s: loaded", vocab, merges);
    if (s == MCNN_OK) mcnn_tokenizer_free(tok);
    else TEST_ASSERT(strstr(mcnn_last_error(), n1) && (!n2 || strstr(mcnn_last_error(), n2)),
                     "message '%s' lacks '%s' or '%s'", mcnn_last_error(), n1, n2 ? n2 : "");
}

static char *read_text(const char *path, size_t *n)
{
    unsigned char *t = NULL;
    TEST_OK(mcnn_read_file_maybe_gzip(&t, n, path));
    return (char *)t;
}

/* s with the first occurrence of from replaced by to, written to path. */
static void write_edited(const char *path, const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    TEST_ASSERT(at, "'%s' not found", from);
    if (!at) return;
    size_t a = (size_t)(at - s), n = strlen(s), fl = strlen(from), tl = strlen(to);
    char *e = malloc(n - fl + tl + 1);
    memcpy(e, s, a), memcpy(e + a, to, tl), memcpy(e + a + tl, at + fl, n - a - fl + 1);
    write_text(path, e);
    free(e);
}

static void test_hf_pairs(void)
{
    size_t vn = 0, mn = 0;
    char *vj = read_text(HF_DIR "vocab.json", &vn), *mt = read_text(HF_DIR "merges.txt", &mn);
    if (!vj || !mt) {
        free(vj), free(mt);
        return;
    }
    char vpath[300], mpath[300];
    snprintf(vpath, sizeof vpath, "%s/vocab.json", g_dir);
    snprintf(mpath, sizeof mpath, "%s/merges.txt", g_dir);
    /* merges.txt truncated to its first 101 lines: 100 merges for 814 tokens */
    size_t cut = 0;
    for (int lines = 0; cut < mn && lines < 101; cut++) lines += mt[cut] == '\n';
    write_bytes(mpath, mt, cut);
    expect_hf_error(HF_DIR "vocab.json", mpath, "814 tokens", "the 100 merges");
    /* the header missing; a merge of an unknown token */
    write_text(mpath, mt + strlen("#version: 0.2\n"));
    expect_hf_error(HF_DIR "vocab.json", mpath, "merges.txt:1:", "'#version' header");
    write_edited(mpath, mt, "\ni n\n", "\ni \xc3\xa9\xc3\xa9\n");
    expect_hf_error(HF_DIR "vocab.json", mpath, "merges.txt:2:", "is not a token of");
    /* vocab.json: a token twice, an id twice, an id out of range, a fraction */
    write_edited(vpath, vj, "\"!\": 0", "\"\\u0021\": 0, \"!\": 0");
    expect_hf_error(vpath, HF_DIR "merges.txt", "'!' appears twice", NULL);
    write_edited(vpath, vj, "\"!\": 0", "\"!\": 1");
    expect_hf_error(vpath, HF_DIR "merges.txt", "both have id 1", NULL);
    write_edited(vpath, vj, "\"!\": 0", "\"!\": 814");
    expect_hf_error(vpath, HF_DIR "merges.txt", "token '!'", "[0, 814)");
    write_edited(vpath, vj, "\"!\": 0", "\"!\": 0.5");
    expect_hf_error(vpath, HF_DIR "merges.txt", "token '!'", "[0, 814)");
    /* the same merges beside a vocab.json with one merge result renamed */
    write_edited(vpath, vj, "\"in\": ", "\"nI\": ");
    expect_hf_error(vpath, HF_DIR "merges.txt", "merges.txt:2:", "merges into 'in'");
    /* empty files */
    write_text(mpath, "");
    expect_hf_error(HF_DIR "vocab.json", mpath, "merges.txt: empty file", NULL);
    write_text(vpath, "");
    expect_hf_error(vpath, HF_DIR "merges.txt", "vocab.json: empty file", NULL);
    free(vj), free(mt);
}

/* ---- label lists -------------------------------------------------------------------------- */
static void expect_labels(const char *text, size_t n, int want_count, const char *const *want)
{
    write_bytes(tmp("labels.txt"), text, n);
    char **names = NULL;
    int count = -1;
    mcnn_status s = mcnn_read_label_list(&names, &count, g_path);
    TEST_ASSERT(s == MCNN_OK, "%s", mcnn_last_error());
    TEST_ASSERT(count == want_count, "%d names, want %d", count, want_count);
    for (int i = 0; i < count && i < want_count && want; i++)
        TEST_ASSERT(strcmp(names[i], want[i]) == 0, "name %d is '%s', want '%s'", i, names[i],
                    want[i]);
    mcnn_free_label_list(names, count);
}

static void expect_labels_error(const void *text, size_t n, const char *n1, const char *n2)
{
    write_bytes(tmp("labels.txt"), text, n);
    char **names = (char **)&names;
    int count = -1;
    mcnn_status s = mcnn_read_label_list(&names, &count, g_path);
    TEST_ASSERT(s != MCNN_OK && !names && count == 0, "'%.20s...' accepted", (const char *)text);
    if (s != MCNN_OK) expect_message("labels.txt", n1, n2);
    else mcnn_free_label_list(names, count);
}

#define LABELS_ERROR(lit, n1, n2) expect_labels_error(lit, sizeof lit - 1, n1, n2)

static void test_labels_accepted(void)
{
    /* a BOM, CRLF, spaces and tabs around names, trailing blank lines */
    static const char ok[] = "\xEF\xBB\xBF" "airport\r\n  beach \r\ncaf\xc3\xa9 terrace\t\n\t\n\r\n\n";
    const char *want_ok[] = {"airport", "beach", "caf\xc3\xa9 terrace"};
    expect_labels(ok, sizeof ok - 1, 3, want_ok);
    /* gzipped */
    static const char gz_hello[] = {0x1f, (char)0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 6, 0, (char)0xf9,
                                    (char)0xff, 'h', 'e', 'l', 'l', 'o', '\n', 0x20, 0x30, 0x3a,
                                    0x36, 6, 0, 0, 0};
    const char *hello[] = {"hello"};
    expect_labels(gz_hello, sizeof gz_hello, 1, hello);
    /* 1024 bytes is the longest line */
    char *line = malloc(1026);
    memset(line, 'x', 1024), line[1024] = '\n';
    expect_labels(line, 1025, 1, NULL);
    memset(line, 'x', 1025), line[1025] = '\n';
    expect_labels_error(line, 1026, ":1:", "longer than 1024 bytes");
    free(line);
}

static void test_labels_refused(void)
{
    LABELS_ERROR("", "no labels", NULL);
    LABELS_ERROR("\n \n\r\n", "no labels", NULL);
    LABELS_ERROR("\xEF\xBB\xBF", "no labels", NULL);
    LABELS_ERROR("cat\n\ndog\n", ":2:", "blank");
    LABELS_ERROR("cat\ndog\xff\n", ":2:", "not valid UTF-8 (byte 4 of the line is 0xFF)");
    LABELS_ERROR("cat\ncaf\xe9\n", ":2:", "not valid UTF-8");
    LABELS_ERROR("cat\nd\xed\xa0\x80g\n", ":2:", "not valid UTF-8"); /* a surrogate */
    LABELS_ERROR("cat\ndo\0g\n", ":2:", "a NUL byte (byte 3 of the line)");
    LABELS_ERROR("cat\n\x1b[31mdog\n", ":2:", "control character (U+001B");
    LABELS_ERROR("cat\ndog\rcow\n", ":2:", "control character (U+000D");
    LABELS_ERROR("cat\ncity\tstreet\n", ":2:", "control character (U+0009"); /* a tab inside */
    LABELS_ERROR("cat\ndo\x7fg\n", ":2:", "control character (U+007F");
    LABELS_ERROR("cat\nd\xc2\x85og\n", ":2:", "control character (U+0085");
    LABELS_ERROR("cat\ndog\n cat\t\n", ":3:", "label 'cat' repeats line 1");
    LABELS_ERROR("\xEF\xBB\xBF" "cat\r\ndog\r\ncat\r\n", ":3:", "repeats line 1");
    /* counts and sizes */
    size_t cap = 100001 * 8 + 1;
    char *many = malloc(cap), *p = many;
    for (int i = 0; i < 100001; i++) p += sprintf(p, "l%d\n", i);
    expect_labels(many, (size_t)(strstr(many, "l100000\n") - many), 100000, NULL);
    expect_labels_error(many, (size_t)(p - many), "more than 100000 lines", NULL);
    free(many);
    write_bytes(tmp("big.txt"), "", 0);
    TEST_ASSERT(truncate(g_path, (off_t)17 << 20) == 0, "truncate");
    char **names = NULL;
    int count = 0;
    TEST_ASSERT(mcnn_read_label_list(&names, &count, g_path) != MCNN_OK, "17 MB accepted");
    expect_message("big.txt", "larger than 16 MB", NULL);
    write_zeros_gz(tmp("labels.gz"), 70000, 0); /* 18 MB of zeros */
    TEST_ASSERT(mcnn_read_label_list(&names, &count, g_path) != MCNN_OK, "gzip bomb accepted");
    expect_message("labels.gz", "inflates to more than 16 MB", NULL);
    TEST_ASSERT(mcnn_read_label_list(&names, &count, tmp("missing.txt")) == MCNN_ERR_IO, "missing");
    expect_message("missing.txt", "cannot open", NULL);
    TEST_ASSERT(mcnn_read_label_list(&names, &count, g_dir) == MCNN_ERR_IO, "a folder");
    expect_message(g_dir, "directory", NULL);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/mcnn_bad_text_XXXXXX");
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    TEST_RUN(test_vocab_not_merges);
    TEST_RUN(test_vocab_gzip_bombs);
    TEST_RUN(test_vocab_real_file);
    TEST_RUN(test_merges_format);
    TEST_RUN(test_hf_pairs);
    TEST_RUN(test_labels_accepted);
    TEST_RUN(test_labels_refused);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", g_dir);
    return test_summary();
}
