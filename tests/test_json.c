/* The internal JSON parser (lib/io/json.h).
 * Judges: RFC 8259 (what is and is not JSON), the Unicode encoding of the escapes (U+00E9 is
 * C3 A9, U+1F600 is the pair D83D DE00 and the bytes F0 9F 98 80), and exact integer values. */
#include "mcnn_test.h"

#include "io/json.h"

/* Parse a NUL-terminated text; report and return 0 on failure. */
static int parse(mcnn_json_doc *doc, const char *text)
{
    mcnn_status s = mcnn_json_parse(doc, text, strlen(text));
    TEST_ASSERT(s == MCNN_OK, "parse %.60s: %s", text, mcnn_last_error());
    return s == MCNN_OK;
}

/* Expect a rejection whose message contains msg. */
static void reject(const char *text, size_t len, const char *msg)
{
    mcnn_json_doc doc;
    mcnn_status s = mcnn_json_parse(&doc, text, len);
    TEST_ASSERT(s == MCNN_ERR_FORMAT && doc.root == NULL && strstr(mcnn_last_error(), msg),
                "'%.40s' should fail with \"%s\": %s %s", text, msg, mcnn_strerror(s), mcnn_last_error());
    if (s == MCNN_OK) mcnn_json_free(&doc);
}
#define REJECT(text, msg) reject(text, sizeof(text) - 1, msg)

static void test_literals_and_numbers(void)
{
    mcnn_json_doc doc;
    if (!parse(&doc, " [true, false, null, 0, -0, 123, -123, 9007199254740993, 9223372036854775807,"
                     " -9223372036854775808, 9223372036854775808, 1.5, -2.5e-3, 1E10, 1e+2, 0.1,"
                     " 1e400, -0.0, 5e-324] ")) return;
    const mcnn_json *r = doc.root;
    TEST_ASSERT(r->type == MCNN_JSON_ARRAY && r->count == 19, "array of 19: %zu", r->count);
    const mcnn_json *v = r->child;
    TEST_ASSERT(v->type == MCNN_JSON_BOOL && v->boolean == 1, "true");
    v = v->next;
    TEST_ASSERT(v->type == MCNN_JSON_BOOL && v->boolean == 0, "false");
    v = v->next;
    TEST_ASSERT(v->type == MCNN_JSON_NULL, "null");
    static const struct { int is_int; int64_t i; double d; } want[] = {
        {1, 0, 0.0},
        {1, 0, -0.0},
        {1, 123, 123.0},
        {1, -123, -123.0},
        {1, 9007199254740993LL, 9007199254740992.0}, /* 2^53 + 1: exact only as an integer */
        {1, INT64_MAX, 9223372036854775807.0},
        {1, INT64_MIN, -9223372036854775808.0},
        {0, 0, 9223372036854775808.0},               /* 2^63 does not fit int64 */
        {0, 0, 1.5},
        {0, 0, -2.5e-3},
        {0, 0, 1e10},
        {0, 0, 100.0},                               /* an exponent makes it a float */
        {0, 0, 0.1},
        {0, 0, HUGE_VAL},                            /* out of range: infinity, as strtod says */
        {0, 0, -0.0},
        {0, 0, 4.9406564584124654e-324},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        v = mcnn_json_at(r, 3 + k);
        TEST_ASSERT(v && v->type == MCNN_JSON_NUMBER, "value %zu is a number", k);
        if (!v) continue;
        TEST_ASSERT(v->is_int == want[k].is_int, "value %zu is_int %d", k, v->is_int);
        if (want[k].is_int) TEST_ASSERT(v->i == want[k].i, "value %zu: %lld", k, (long long)v->i);
        TEST_ASSERT(v->num == want[k].d, "value %zu: %.17g want %.17g", k, v->num, want[k].d);
    }
    TEST_ASSERT(signbit(mcnn_json_at(r, 17)->num), "-0.0 keeps its sign");
    TEST_ASSERT(mcnn_json_at(r, 19) == NULL, "at() past the end");
    mcnn_json_free(&doc);

    /* a lone value at the root, surrounded by whitespace */
    if (parse(&doc, "\t\r\n 42 \n")) {
        TEST_ASSERT(doc.root->type == MCNN_JSON_NUMBER && doc.root->i == 42, "root 42");
        mcnn_json_free(&doc);
    }

    REJECT("01", "leading zero");
    REJECT("-01", "leading zero");
    REJECT("-", "invalid number");
    REJECT("1.", "digit after '.'");
    REJECT(".5", "expected a value");
    REJECT("+1", "expected a value");
    REJECT("1e", "exponent");
    REJECT("1e+", "exponent");
    REJECT("0x10", "unexpected text");
    REJECT("NaN", "expected a value");
    REJECT("Infinity", "expected a value");
    REJECT("tru", "expected a value");
    REJECT("nul", "expected a value");
    REJECT("True", "expected a value");
}

static void test_strings(void)
{
    mcnn_json_doc doc;
    if (parse(&doc, "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u0041\\u00e9\\u20AC\", \"\\ud83d\\ude00\\uD834\\uDD1E\","
                    " \"a\\u0000b\", \"caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80\", \"\"]")) {
        const mcnn_json *s = doc.root->child;
        TEST_ASSERT(s->type == MCNN_JSON_STRING && strcmp(s->str, "\"\\/\b\f\n\r\t") == 0 && s->len == 8,
                    "simple escapes: %s", s->str);
        s = s->next;
        TEST_ASSERT(strcmp(s->str, "A\xC3\xA9\xE2\x82\xAC") == 0, "BMP escapes");
        s = s->next; /* U+1F600 and U+1D11E, each from a surrogate pair */
        TEST_ASSERT(strcmp(s->str, "\xF0\x9F\x98\x80\xF0\x9D\x84\x9E") == 0 && s->len == 8, "surrogate pairs");
        s = s->next;
        TEST_ASSERT(s->len == 3 && memcmp(s->str, "a\0b", 4) == 0, "\\u0000 kept, len 3");
        s = s->next;
        TEST_ASSERT(strcmp(s->str, "caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80") == 0, "raw UTF-8 passes");
        s = s->next;
        TEST_ASSERT(s->len == 0 && s->str[0] == '\0', "empty string");
        mcnn_json_free(&doc);
    }
    REJECT("\"abc", "unterminated string");
    REJECT("\"abc\\", "unterminated string");
    REJECT("\"a\\x\"", "unknown escape");
    REJECT("\"a\\u12\"", "4 hex digits");
    REJECT("\"a\\u12g4\"", "4 hex digits");
    REJECT("\"\\ude00\"", "lone low surrogate");
    REJECT("\"\\ud83d\"", "high surrogate not followed");
    REJECT("\"\\ud83dx\"", "high surrogate not followed");
    REJECT("\"\\ud83d\\u0041\"", "high surrogate not followed");
    REJECT("\"\\ud83d\\ud83d\"", "high surrogate not followed");
    REJECT("\"tab\there\"", "control character");
    REJECT("\"new\nline\"", "control character");
    REJECT("\"\xC0\xAF\"", "invalid UTF-8");       /* overlong '/' */
    REJECT("\"\xE0\x80\xAF\"", "invalid UTF-8");   /* overlong, 3 bytes */
    REJECT("\"\xED\xA0\x80\"", "invalid UTF-8");   /* an encoded surrogate */
    REJECT("\"\xF4\x90\x80\x80\"", "invalid UTF-8"); /* above U+10FFFF */
    REJECT("\"\xF5\x80\x80\x80\"", "invalid UTF-8");
    REJECT("\"\xE6\x97\"", "invalid UTF-8");       /* truncated sequence */
    REJECT("\"\x80\"", "invalid UTF-8");           /* lone continuation byte */
    reject("\"a\0b\"", 5, "control character");      /* a raw NUL */

    TEST_ASSERT(mcnn_utf8_valid("", 0) && mcnn_utf8_valid("\xF4\x8F\xBF\xBF", 4) &&
                    !mcnn_utf8_valid("\xC3", 1) && !mcnn_utf8_valid("\xFF", 1),
                "mcnn_utf8_valid");
}

static void test_objects_and_arrays(void)
{
    mcnn_json_doc doc;
    const char *text = "{ \"a\" : [1, [2, {}], []], \"b\":{\"c\":\"d\",\"e\":null}, \"\":0, \"a\":2 }";
    if (!parse(&doc, text)) return;
    const mcnn_json *r = doc.root;
    TEST_ASSERT(r->type == MCNN_JSON_OBJECT && r->count == 4, "4 members");
    const mcnn_json *a = mcnn_json_get(r, "a");
    TEST_ASSERT(a && a->type == MCNN_JSON_ARRAY && a->count == 3 && a->pos == 8, "a: pos %zu", a ? a->pos : 0);
    TEST_ASSERT(a && strcmp(a->key, "a") == 0 && a->key_len == 1, "key of a");
    const mcnn_json *a1 = mcnn_json_at(a, 1);
    TEST_ASSERT(a1 && a1->count == 2 && mcnn_json_at(a1, 1)->type == MCNN_JSON_OBJECT &&
                    mcnn_json_at(a1, 1)->count == 0 && mcnn_json_at(a, 2)->count == 0,
                "nested empties");
    TEST_ASSERT(mcnn_json_at(a, 0)->key == NULL, "array elements have no key");
    const mcnn_json *b = mcnn_json_get(r, "b");
    TEST_ASSERT(b && strcmp(mcnn_json_get(b, "c")->str, "d") == 0 &&
                    mcnn_json_get(b, "e")->type == MCNN_JSON_NULL && !mcnn_json_get(b, "x"),
                "b.c, b.e");
    TEST_ASSERT(mcnn_json_get(r, "")->i == 0 && !mcnn_json_get(a, "a") && !mcnn_json_get(NULL, "a"), "get");
    /* member order is kept, duplicates too: get() finds the first, first_duplicate the second */
    const char *order[] = {"a", "b", "", "a"};
    int k = 0;
    for (const mcnn_json *m = r->child; m; m = m->next, k++)
        TEST_ASSERT(k < 4 && strcmp(m->key, order[k]) == 0, "member %d", k);
    const mcnn_json *dup = mcnn_json_first_duplicate(r);
    TEST_ASSERT(dup && dup->type == MCNN_JSON_NUMBER && dup->i == 2, "duplicate 'a'");
    TEST_ASSERT(mcnn_json_first_duplicate(b) == NULL, "no duplicate in b");
    mcnn_json_free(&doc);
    mcnn_json_free(&doc); /* harmless twice */
}

static void test_errors(void)
{
    REJECT("", "expected a value at byte 0 (end of text)");
    REJECT("   ", "expected a value at byte 3");
    REJECT("{\"a\":1,}", "expected a string key in object at byte 7 (found '}')");
    REJECT("[1,]", "expected a value at byte 3");
    REJECT("[1 2]", "expected ',' or ']' in array at byte 3");
    REJECT("{\"a\" 1}", "expected ':' after an object key at byte 5");
    REJECT("{\"a\":1 \"b\":2}", "expected ',' or '}' in object at byte 7");
    REJECT("{1:2}", "expected a string key");
    REJECT("[1] [2]", "unexpected text after the JSON value at byte 4");
    REJECT("{}}", "unexpected text after the JSON value at byte 2");
    REJECT("[1, /* c */ 2]", "expected a value at byte 4");
    REJECT("{\"a\":[1,2}", "expected ',' or ']'");
    REJECT("\xEF\xBB\xBF{}", "found byte 0xef"); /* a byte-order mark is not JSON */
    /* a length excludes the text after it: "[1]" then junk outside the range parses */
    mcnn_json_doc doc;
    TEST_OK(mcnn_json_parse(&doc, "[1]garbage", 3));
    mcnn_json_free(&doc);
}

static void test_depth_limit(void)
{
    size_t big = 1000000; /* a million '[': a recursive parser without a limit overflows its stack */
    char *s = malloc(2 * big + 1);
    for (size_t i = 0; i < big; i++) s[i] = '[', s[2 * big - 1 - i] = ']';
    s[2 * big] = '\0';
    reject(s, 2 * big, "nesting deeper than 256 levels at byte 256");
    mcnn_json_doc doc;
    size_t ok = MCNN_JSON_MAX_DEPTH; /* exactly at the limit: accepted */
    TEST_OK(mcnn_json_parse(&doc, s + big - ok, 2 * ok));
    if (doc.root) {
        const mcnn_json *j = doc.root;
        size_t depth = 1;
        while (j->child) j = j->child, depth++;
        TEST_ASSERT(depth == ok, "depth %zu", depth);
        mcnn_json_free(&doc);
    }
    reject(s + big - ok - 1, 2 * ok + 2, "nesting deeper");
    /* same for objects */
    size_t n = 300;
    char *o = malloc(6 * n + 2);
    size_t p = 0;
    for (size_t i = 0; i < n; i++) memcpy(o + p, "{\"a\":", 5), p += 5;
    o[p++] = '1';
    for (size_t i = 0; i < n; i++) o[p++] = '}';
    reject(o, p, "nesting deeper");
    free(o);
    free(s);
}

/* The escaper writes what the parser reads back, for every byte value that may appear. */
static void test_escape_round_trip(void)
{
    char src[200];
    size_t n = 0;
    for (int c = 1; c < 128; c++) src[n++] = (char)c;
    memcpy(src + n, "\xC3\xA9\xF0\x9F\x98\x80", 6);
    n += 6;
    src[n++] = '\0'; /* an embedded NUL too */
    src[n++] = 'z';
    size_t k = mcnn_json_escape(NULL, src, n);
    char *lit = malloc(k + 1);
    TEST_ASSERT(mcnn_json_escape(lit, src, n) == k, "escape length");
    lit[k] = '\0';
    TEST_ASSERT(strchr(lit, '\n') == NULL && lit[0] == '"' && lit[k - 1] == '"', "no raw control chars");
    mcnn_json_doc doc;
    TEST_OK(mcnn_json_parse(&doc, lit, k));
    if (doc.root)
        TEST_ASSERT(doc.root->len == n && memcmp(doc.root->str, src, n) == 0, "round trip (%zu bytes)",
                    doc.root->len);
    mcnn_json_free(&doc);
    free(lit);
}

/* Bytes that are not UTF-8 become \ufffd, one per maximal invalid subpart (the counts are
 * Python's: len(b.decode("utf-8", "replace")) - ...), and C1 controls are escaped: what comes
 * out always parses.  Then random bytes, which must always give valid JSON. */
static void test_escape_invalid_utf8(void)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"\xff", "\"\\ufffd\""},
        {"caf\xe9", "\"caf\\ufffd\""},
        {"\xf0\x9f\x98", "\"\\ufffd\""},                     /* truncated: one */
        {"\xe0\x80", "\"\\ufffd\\ufffd\""},                  /* overlong: two */
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},       /* a surrogate: three */
        {"a\xf4\x90\x80\x80z", "\"a\\ufffd\\ufffd\\ufffd\\ufffdz\""}, /* above U+10FFFF */
        {"\xc0\xaf", "\"\\ufffd\\ufffd\""},
        {"\xe2\x82 ok", "\"\\ufffd ok\""},
        {"a\xc2\x85" "b\xc2\x9f\xc2\xa0", "\"a\\u0085b\\u009f\xc2\xa0\""}, /* C1; NBSP stays */
        {"\xe2\x80\xa8\xf0\x9f\x98\x80", "\"\xe2\x80\xa8\xf0\x9f\x98\x80\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].in), k = mcnn_json_escape(NULL, cases[i].in, n);
        char lit[128] = {0};
        TEST_ASSERT(k < sizeof lit && mcnn_json_escape(lit, cases[i].in, n) == k, "case %zu", i);
        TEST_ASSERT(strcmp(lit, cases[i].want) == 0, "case %zu: %s, want %s", i, lit, cases[i].want);
        mcnn_json_doc doc;
        TEST_OK(mcnn_json_parse(&doc, lit, k));
        mcnn_json_free(&doc);
    }
    unsigned x = 1;
    int bad = 0;
    for (int trial = 0; trial < 20000; trial++) {
        unsigned char src[24];
        size_t n = (size_t)(trial % 24);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            unsigned r = x >> 16;
            src[i] = (unsigned char)(r % 4 == 0 ? 0x80 + r % 0x80 : r % 4 == 1 ? 0xC0 + r % 0x40
                                                                              : r);
        }
        size_t k = mcnn_json_escape(NULL, (const char *)src, n);
        char *lit = malloc(k + 1);
        size_t k2 = mcnn_json_escape(lit, (const char *)src, n);
        mcnn_json_doc doc;
        if (k2 != k || mcnn_json_parse(&doc, lit, k) != MCNN_OK) {
            if (bad++ < 3) TEST_ASSERT(0, "trial %d: escape of %zu random bytes: %s", trial, n,
                                       mcnn_last_error());
        } else {
            mcnn_json_free(&doc);
        }
        free(lit);
    }
}

/* A vocab.json-sized object (CLIP: 49408 entries of string -> int) parses quickly, and every
 * key and value comes back.  The keys mix ASCII, raw UTF-8 and \u escapes, as in the real file. */
static void test_vocab_sized(void)
{
    enum { N = 49408 };
    size_t cap = (size_t)N * 48 + 16, p = 0;
    char *t = malloc(cap);
    t[p++] = '{';
    for (int i = 0; i < N; i++) {
        const char *fmt = i % 3 == 0 ? "\"tok%d</w>\": %d" : i % 3 == 1 ? "\"\\u0120w%d\\ud83d\\ude00\":%d"
                                                                     : "\"\xC4\xA0x%d\xE2\x80\x99\":%d";
        p += (size_t)snprintf(t + p, cap - p, fmt, i, i);
        if (i + 1 < N) t[p++] = ',';
    }
    t[p++] = '}';
    mcnn_json_doc doc;
    double t0 = mcnn_seconds();
    TEST_OK(mcnn_json_parse(&doc, t, p));
    double ms = (mcnn_seconds() - t0) * 1e3;
    if (!doc.root) {
        free(t);
        return;
    }
    TEST_ASSERT(doc.root->count == N, "count %zu", doc.root->count);
    int i = 0, bad = 0;
    char want[64];
    for (const mcnn_json *m = doc.root->child; m; m = m->next, i++) {
        snprintf(want, sizeof want, i % 3 == 0 ? "tok%d</w>" : i % 3 == 1 ? "\xC4\xA0w%d\xF0\x9F\x98\x80"
                                                                       : "\xC4\xA0x%d\xE2\x80\x99", i);
        if (strcmp(m->key, want) != 0 || m->key_len != strlen(want) || !m->is_int || m->i != i) bad++;
    }
    TEST_ASSERT(bad == 0 && i == N, "%d of %d entries wrong", bad, i);
    TEST_ASSERT(ms < 1000, "parsing %zu bytes took %.1f ms", p, ms);
    fprintf(stderr, "  %d entries, %zu bytes: %.1f ms\n", N, p, ms);
    mcnn_json_free(&doc);
    free(t);
}

int main(void)
{
    TEST_RUN(test_literals_and_numbers);
    TEST_RUN(test_strings);
    TEST_RUN(test_objects_and_arrays);
    TEST_RUN(test_errors);
    TEST_RUN(test_depth_limit);
    TEST_RUN(test_escape_round_trip);
    TEST_RUN(test_escape_invalid_utf8);
    TEST_RUN(test_vocab_sized);
    return test_summary();
}
