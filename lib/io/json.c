/* A strict JSON parser into one block of nodes: see json.h.
 * Recursive descent with an explicit depth limit, so hostile nesting ("[[[[...") fails with
 * a message instead of overflowing the stack. */
#include "json.h"
#include "text/unicode.h"

#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *s;     /* text */
    size_t n, p;       /* length, cursor */
    mcnn_json *nodes;  /* pre-sized by prescan() */
    size_t nnodes, cap;
    char *strbuf;      /* decoded strings, each NUL-terminated */
    size_t strused, strcap;
} parser;

static mcnn_status fail(const parser *ps, size_t at, const char *what)
{
    if (at < ps->n) {
        unsigned char c = (unsigned char)ps->s[at];
        if (c >= 0x20 && c < 0x7f)
            return mcnn_set_error(MCNN_ERR_FORMAT, "JSON: %s at byte %zu (found '%c')", what, at,
                                  (char)c);
        return mcnn_set_error(MCNN_ERR_FORMAT, "JSON: %s at byte %zu (found byte 0x%02x)", what,
                              at, c);
    }
    return mcnn_set_error(MCNN_ERR_FORMAT, "JSON: %s at byte %zu (end of text)", what, at);
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->n) {
        char c = ps->s[ps->p];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        ps->p++;
    }
}

/* Upper bounds for the block: every value but the root follows a '[', '{' or ','; every
 * string has two quotes and decodes to no more bytes than its source. */
static void prescan(const char *s, size_t n, size_t *nvalues, size_t *nstrings)
{
    size_t v = 1, q = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '[' || c == '{' || c == ',') {
            v++;
        } else if (c == '"') {
            q++;
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
        }
    }
    *nvalues = v;
    *nstrings = q;
}

static mcnn_json *new_node(parser *ps, mcnn_json_type t, size_t pos)
{
    if (ps->nnodes == ps->cap) return NULL; /* cannot happen: prescan bounds the count */
    mcnn_json *j = &ps->nodes[ps->nnodes++];
    memset(j, 0, sizeof *j);
    j->type = t;
    j->pos = pos;
    return j;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(const parser *ps, size_t at, unsigned *out)
{
    if (at + 4 > ps->n) return 0;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(ps->s[at + k]);
        if (h < 0) return 0;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | cp >> 6);
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | cp >> 12);
        d[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | cp >> 18);
    d[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    d[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the UTF-8 sequence starting s[0..n), or 0 when it is malformed. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    int len = mcnn_utf8_scan(s, n, 0);
    return len > 0 ? (size_t)len : 0;
}

int mcnn_utf8_valid(const char *s, size_t n)
{
    return mcnn_utf8_check((const unsigned char *)s, n) == n;
}

/* At an opening quote: decode the string into strbuf. */
static mcnn_status parse_string(parser *ps, const char **out, size_t *outlen)
{
    size_t start = ps->p++;
    char *d = ps->strbuf + ps->strused, *d0 = d;
    for (;;) {
        if (ps->p >= ps->n) return fail(ps, start, "unterminated string starting");
        unsigned char c = (unsigned char)ps->s[ps->p];
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20) return fail(ps, ps->p, "control character inside a string");
        if (c == '\\') {
            size_t esc = ps->p;
            if (esc + 1 >= ps->n) return fail(ps, start, "unterminated string starting");
            char e = ps->s[esc + 1];
            ps->p += 2;
            switch (e) {
            case '"': *d++ = '"'; break;
            case '\\': *d++ = '\\'; break;
            case '/': *d++ = '/'; break;
            case 'b': *d++ = '\b'; break;
            case 'f': *d++ = '\f'; break;
            case 'n': *d++ = '\n'; break;
            case 'r': *d++ = '\r'; break;
            case 't': *d++ = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (!read_hex4(ps, ps->p, &cp)) return fail(ps, esc, "bad \\u escape (needs 4 hex digits)");
                ps->p += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return fail(ps, esc, "lone low surrogate in \\u escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) { /* a high surrogate must pair with a low one */
                    if (ps->p + 6 > ps->n || ps->s[ps->p] != '\\' || ps->s[ps->p + 1] != 'u' ||
                        !read_hex4(ps, ps->p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return fail(ps, esc, "high surrogate not followed by a low surrogate");
                    ps->p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                d += put_utf8(d, cp);
                break;
            }
            default: return fail(ps, esc, "unknown escape in string");
            }
            continue;
        }
        if (c < 0x80) { /* the common case: copy a run of plain ASCII at once */
            size_t q = ps->p + 1;
            while (q < ps->n) {
                unsigned char u = (unsigned char)ps->s[q];
                if (u == '"' || u == '\\' || u < 0x20 || u >= 0x80) break;
                q++;
            }
            memcpy(d, ps->s + ps->p, q - ps->p);
            d += q - ps->p;
            ps->p = q;
            continue;
        }
        size_t k = utf8_seq((const unsigned char *)ps->s + ps->p, ps->n - ps->p);
        if (!k) return fail(ps, ps->p, "invalid UTF-8 in string");
        memcpy(d, ps->s + ps->p, k);
        d += k;
        ps->p += k;
    }
    *d++ = '\0';
    *out = d0;
    *outlen = (size_t)(d - d0) - 1;
    ps->strused += (size_t)(d - d0);
    return MCNN_OK;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static mcnn_status parse_number(parser *ps, mcnn_json *j)
{
    size_t start = ps->p, p = ps->p;
    const char *s = ps->s;
    int neg = 0, integral = 1;
    if (p < ps->n && s[p] == '-') neg = 1, p++;
    if (p >= ps->n || !is_digit(s[p])) return fail(ps, start, "invalid number");
    if (s[p] == '0' && p + 1 < ps->n && is_digit(s[p + 1]))
        return fail(ps, start, "number with a leading zero");
    /* integer part, accumulated as a negative value so INT64_MIN fits */
    int64_t acc = 0;
    int overflow = 0;
    for (; p < ps->n && is_digit(s[p]); p++) {
        int dgt = s[p] - '0';
        if (acc < (INT64_MIN + dgt) / 10) overflow = 1;
        else acc = acc * 10 - dgt;
    }
    if (p < ps->n && s[p] == '.') {
        integral = 0;
        p++;
        if (p >= ps->n || !is_digit(s[p])) return fail(ps, p, "expected a digit after '.'");
        while (p < ps->n && is_digit(s[p])) p++;
    }
    if (p < ps->n && (s[p] == 'e' || s[p] == 'E')) {
        integral = 0;
        p++;
        if (p < ps->n && (s[p] == '+' || s[p] == '-')) p++;
        if (p >= ps->n || !is_digit(s[p])) return fail(ps, p, "expected a digit in the exponent");
        while (p < ps->n && is_digit(s[p])) p++;
    }
    ps->p = p;
    if (integral && !overflow && (neg || acc != INT64_MIN)) {
        j->is_int = 1;
        j->i = neg ? acc : -acc;
        if (acc >= -(INT64_C(1) << 53) && (acc != 0 || !neg)) { /* exact in a double: skip strtod */
            j->num = (double)j->i;
            return MCNN_OK;
        }
    }
    /* strtod needs a terminated copy; the grammar was checked above, so strtod reads it all.
     * (strtod follows the C locale's decimal point; the library never calls setlocale.) */
    size_t len = p - start;
    char small[128], *buf = small;
    if (len >= sizeof small && !(buf = malloc(len + 1)))
        return mcnn_set_error(MCNN_ERR_NOMEM, "JSON: out of memory for a %zu-byte number", len);
    memcpy(buf, s + start, len);
    buf[len] = '\0';
    j->num = strtod(buf, NULL);
    if (buf != small) free(buf);
    return MCNN_OK;
}

static int match_word(parser *ps, const char *w)
{
    size_t k = strlen(w);
    if (ps->n - ps->p < k || memcmp(ps->s + ps->p, w, k) != 0) return 0;
    ps->p += k;
    return 1;
}

static mcnn_status parse_value(parser *ps, mcnn_json **out, int depth);

/* At '[' or '{': children linked in source order. */
static mcnn_status parse_container(parser *ps, mcnn_json *j, int depth)
{
    int is_obj = j->type == MCNN_JSON_OBJECT;
    char close = is_obj ? '}' : ']';
    if (depth >= MCNN_JSON_MAX_DEPTH) return fail(ps, ps->p, "nesting deeper than 256 levels");
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->n && ps->s[ps->p] == close) {
        ps->p++;
        return MCNN_OK;
    }
    mcnn_json **tail = &j->child;
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        if (is_obj) {
            if (ps->p >= ps->n || ps->s[ps->p] != '"')
                return fail(ps, ps->p, "expected a string key in object");
            MCNN_TRY(parse_string(ps, &key, &key_len));
            skip_ws(ps);
            if (ps->p >= ps->n || ps->s[ps->p] != ':')
                return fail(ps, ps->p, "expected ':' after an object key");
            ps->p++;
        }
        mcnn_json *c;
        MCNN_TRY(parse_value(ps, &c, depth + 1));
        c->key = key;
        c->key_len = key_len;
        *tail = c;
        tail = &c->next;
        j->count++;
        skip_ws(ps);
        if (ps->p < ps->n && ps->s[ps->p] == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->n && ps->s[ps->p] == close) {
            ps->p++;
            return MCNN_OK;
        }
        return fail(ps, ps->p, is_obj ? "expected ',' or '}' in object" : "expected ',' or ']' in array");
    }
}

static mcnn_status parse_value(parser *ps, mcnn_json **out, int depth)
{
    skip_ws(ps);
    if (ps->p >= ps->n) return fail(ps, ps->p, "expected a value");
    size_t pos = ps->p;
    char c = ps->s[pos];
    mcnn_json_type t;
    switch (c) {
    case '{': t = MCNN_JSON_OBJECT; break;
    case '[': t = MCNN_JSON_ARRAY; break;
    case '"': t = MCNN_JSON_STRING; break;
    case 't': case 'f': t = MCNN_JSON_BOOL; break;
    case 'n': t = MCNN_JSON_NULL; break;
    default:
        if (c == '-' || is_digit(c)) {
            t = MCNN_JSON_NUMBER;
            break;
        }
        return fail(ps, pos, "expected a value");
    }
    mcnn_json *j = new_node(ps, t, pos);
    if (!j) return mcnn_set_error(MCNN_ERR_FORMAT, "JSON: internal node count exceeded at byte %zu", pos);
    *out = j;
    switch (t) {
    case MCNN_JSON_OBJECT:
    case MCNN_JSON_ARRAY: return parse_container(ps, j, depth);
    case MCNN_JSON_STRING: return parse_string(ps, &j->str, &j->len);
    case MCNN_JSON_NUMBER: return parse_number(ps, j);
    case MCNN_JSON_BOOL:
        if (match_word(ps, "true")) j->boolean = 1;
        else if (!match_word(ps, "false")) return fail(ps, pos, "expected a value");
        return MCNN_OK;
    case MCNN_JSON_NULL:
        if (!match_word(ps, "null")) return fail(ps, pos, "expected a value");
        return MCNN_OK;
    }
    return MCNN_OK;
}

mcnn_status mcnn_json_parse(mcnn_json_doc *doc, const char *text, size_t len)
{
    doc->root = NULL;
    doc->block = NULL;
    size_t nvalues, nstrings;
    prescan(text, len, &nvalues, &nstrings);
    int overflow = 0;
    size_t node_bytes = mcnn_mul_size(nvalues, sizeof(mcnn_json), &overflow);
    size_t str_bytes = len + nstrings + 1; /* decoded <= source, plus one NUL each */
    if (overflow || str_bytes < len || node_bytes > SIZE_MAX - str_bytes)
        return mcnn_set_error(MCNN_ERR_NOMEM, "JSON: a %zu-byte text is too large", len);
    char *block = malloc(node_bytes + str_bytes);
    if (!block)
        return mcnn_set_error(MCNN_ERR_NOMEM, "JSON: out of memory for a %zu-byte text", len);
    parser ps = {text, len, 0, (mcnn_json *)(void *)block, 0, nvalues, block + node_bytes, 0,
                 str_bytes};
    mcnn_json *root = NULL;
    mcnn_status s = parse_value(&ps, &root, 0);
    if (s == MCNN_OK) {
        skip_ws(&ps);
        if (ps.p != len) s = fail(&ps, ps.p, "unexpected text after the JSON value");
    }
    if (s != MCNN_OK) {
        free(block);
        return s;
    }
    doc->root = root;
    doc->block = block;
    return MCNN_OK;
}

void mcnn_json_free(mcnn_json_doc *doc)
{
    if (!doc) return;
    free(doc->block);
    doc->block = NULL;
    doc->root = NULL;
}

const mcnn_json *mcnn_json_get(const mcnn_json *obj, const char *key)
{
    if (!obj || obj->type != MCNN_JSON_OBJECT) return NULL;
    size_t k = strlen(key);
    for (const mcnn_json *c = obj->child; c; c = c->next)
        if (c->key_len == k && memcmp(c->key, key, k) == 0) return c;
    return NULL;
}

const mcnn_json *mcnn_json_at(const mcnn_json *arr, size_t i)
{
    if (!arr || (arr->type != MCNN_JSON_ARRAY && arr->type != MCNN_JSON_OBJECT)) return NULL;
    const mcnn_json *c = arr->child;
    while (c && i--) c = c->next;
    return c;
}

static int cmp_key(const void *a, const void *b)
{
    const mcnn_json *x = *(const mcnn_json *const *)a, *y = *(const mcnn_json *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c) return c;
    if (x->key_len != y->key_len) return x->key_len < y->key_len ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos; /* stable: report the later one */
}

const mcnn_json *mcnn_json_first_duplicate(const mcnn_json *obj)
{
    if (!obj || obj->type != MCNN_JSON_OBJECT || obj->count < 2) return NULL;
    const mcnn_json **v = malloc(obj->count * sizeof *v);
    if (!v) { /* out of memory: fall back to the quadratic check */
        for (const mcnn_json *a = obj->child; a; a = a->next)
            for (const mcnn_json *b = a->next; b; b = b->next)
                if (a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0) return b;
        return NULL;
    }
    size_t n = 0;
    for (const mcnn_json *c = obj->child; c; c = c->next) v[n++] = c;
    qsort(v, n, sizeof *v, cmp_key);
    const mcnn_json *dup = NULL;
    for (size_t i = 1; i < n; i++) {
        if (v[i]->key_len == v[i - 1]->key_len &&
            memcmp(v[i]->key, v[i - 1]->key, v[i]->key_len) == 0 &&
            (!dup || v[i]->pos < dup->pos))
            dup = v[i];
    }
    free(v);
    return dup;
}

const char *mcnn_json_type_name(mcnn_json_type t)
{
    switch (t) {
    case MCNN_JSON_NULL: return "null";
    case MCNN_JSON_BOOL: return "boolean";
    case MCNN_JSON_NUMBER: return "number";
    case MCNN_JSON_STRING: return "string";
    case MCNN_JSON_ARRAY: return "array";
    case MCNN_JSON_OBJECT: return "object";
    }
    return "?";
}

size_t mcnn_json_escape(char *dst, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t k = 0;
#define PUT(ch) do { if (dst) dst[k] = (ch); k++; } while (0)
#define PUT_U(cp)                                                                          \
    do {                                                                                   \
        PUT('\\'); PUT('u');                                                               \
        for (int sh = 12; sh >= 0; sh -= 4) PUT(hex[((cp) >> sh) & 15]);                  \
    } while (0)
    PUT('"');
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        int len = c < 0x80 ? 1 : mcnn_utf8_scan(u, n, i);
        if (len < 0) { /* not UTF-8: one U+FFFD per maximal invalid subpart, as Python's "replace" */
            PUT_U(0xFFFDu);
            i += (size_t)-len;
        } else if (c == '"' || c == '\\') {
            PUT('\\');
            PUT((char)c);
        } else if (c == '\n') {
            PUT('\\');
            PUT('n');
        } else if (c == '\t') {
            PUT('\\');
            PUT('t');
        } else if (c == '\r') {
            PUT('\\');
            PUT('r');
        } else if (c < 0x20 || c == 0x7f) {
            PUT_U((unsigned)c);
        } else if (c == 0xC2 && u[i + 1] < 0xA0) { /* C1 controls: valid JSON raw, unsafe on a terminal */
            PUT_U((unsigned)u[i + 1]);
        } else {
            for (int j = 0; j < len; j++) PUT((char)u[i + j]); /* UTF-8 passes through as is */
        }
        if (len > 0) i += (size_t)len;
    }
    PUT('"');
#undef PUT_U
#undef PUT
    return k;
}
