/* Python's html.unescape (Lib/html/__init__.py), code point for code point: see html.h. */
#include "text/html.h"

#include <string.h>

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }

static int hex_value(uint32_t c)
{
    if (is_digit(c)) return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* [^\t\n\f <&#;]: the characters an entity name may contain in the matching pattern */
static int name_char(uint32_t c)
{
    return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' &&
           c != ';';
}

static const char *entity(const char *name)
{
    int lo = 0, hi = mcnn_html_entities_n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(name, mcnn_html_entities[mid].name);
        if (c == 0) return mcnn_html_entities[mid].utf8;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

/* Append the code points of a short UTF-8 string (an entity's value). */
static size_t put_utf8(uint32_t *out, const char *v)
{
    size_t o = 0;
    size_t bad;
    uint32_t cps[4];
    long n = mcnn_utf8_decode(cps, (const unsigned char *)v, strlen(v), &bad);
    for (long k = 0; k < n; k++) out[o++] = cps[k];
    return o;
}

/* The replacement for &#num; (num saturated above 0x10FFFF); 0 or 1 code points. */
static size_t numeric(uint32_t *out, uint32_t num)
{
    for (int k = 0; k < mcnn_html_invalid_charrefs_n; k++)
        if (mcnn_html_invalid_charrefs[k][0] == num) {
            out[0] = mcnn_html_invalid_charrefs[k][1];
            return 1;
        }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
        out[0] = 0xFFFD;
        return 1;
    }
    if (mcnn_u_in(mcnn_html_invalid_codepoints, mcnn_html_invalid_codepoints_n, num)) return 0;
    out[0] = num;
    return 1;
}

size_t mcnn_html_unescape(uint32_t *out, const uint32_t *s, size_t n)
{
    size_t o = 0, i = 0;
    while (i < n) {
        if (s[i] != '&') {
            out[o++] = s[i++];
            continue;
        }
        size_t j = i + 1; /* one past the '&' */
        if (j < n && s[j] == '#') {
            /* #[0-9]+;?  then  #[xX][0-9a-fA-F]+;? */
            uint32_t num = 0;
            size_t k = j + 1;
            int hex = 0;
            if (k < n && (s[k] == 'x' || s[k] == 'X')) hex = 1, k++;
            size_t first = k;
            while (k < n && (hex ? hex_value(s[k]) >= 0 : is_digit(s[k]))) {
                uint32_t d = hex ? (uint32_t)hex_value(s[k]) : s[k] - '0';
                num = num > 0x10FFFF ? 0x110000 : num * (hex ? 16 : 10) + d;
                k++;
            }
            if (k == first) { /* neither form matched: the '&' is kept as text */
                out[o++] = s[i++];
                continue;
            }
            if (num > 0x10FFFF) num = 0x110000;
            if (k < n && s[k] == ';') k++;
            uint32_t rep[1];
            size_t m = numeric(rep, num);
            if (m) out[o++] = rep[0];
            i = k;
            continue;
        }
        /* [^\t\n\f <&#;]{1,32};? */
        size_t k = j;
        while (k < n && k - j < 32 && name_char(s[k])) k++;
        size_t len = k - j; /* name characters */
        if (len == 0) {
            out[o++] = s[i++];
            continue;
        }
        int semi = k < n && s[k] == ';';
        /* the whole match s[j .. k+semi), then its prefixes of len-1+semi .. 2 characters:
         * a name with a non-ASCII character cannot be an entity */
        char name[40];
        size_t ascii = 0;
        while (ascii < len && s[j + ascii] < 0x80) {
            name[ascii] = (char)s[j + ascii];
            ascii++;
        }
        const char *v = NULL;
        size_t used = 0; /* characters of the match the entity consumed */
        if (ascii == len) {
            name[len] = ';', name[len + semi] = '\0';
            if ((v = entity(name)) != NULL) used = len + (size_t)semi;
        }
        for (size_t x = len + (size_t)semi - 1; !v && x >= 2; x--) {
            if (x > ascii) continue;
            name[x] = '\0';
            if ((v = entity(name)) != NULL) used = x;
        }
        size_t end = k + (size_t)semi; /* one past the match */
        if (v) {
            o += put_utf8(out + o, v);
            for (size_t r = j + used; r < end; r++) out[o++] = s[r];
        } else {
            for (size_t r = i; r < end; r++) out[o++] = s[r];
        }
        i = end;
    }
    return o;
}
