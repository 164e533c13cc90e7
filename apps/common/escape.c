/* Names as valid UTF-8 and as safe terminal text; see escape.h. */
#include "escape.h"

#include "mcnn/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t utf8_sequence(const char *s, size_t n)
{
    const unsigned char c = (unsigned char)s[0];
    const size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    return len && len <= n && mcnn_utf8_valid(s, len) ? len : 0;
}

static unsigned code_point(const unsigned char *s, size_t len)
{
    static const unsigned lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    unsigned cp = s[0] & lead_mask[len];
    for (size_t k = 1; k < len; k++) cp = cp << 6 | (s[k] & 0x3F);
    return cp;
}

char *utf8_from_name(const char *s)
{
    const size_t n = strlen(s);
    char *out = malloc(2 * n + 1), *d = out; /* an invalid byte becomes two */
    if (!out) return NULL;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_sequence(s + i, n - i);
        if (k) {
            memcpy(d, s + i, k);
            d += k, i += k;
        } else { /* the Latin-1 character of the byte's value: U+0080..U+00FF */
            const unsigned char b = (unsigned char)s[i++];
            *d++ = (char)(0xC0 | b >> 6);
            *d++ = (char)(0x80 | (b & 0x3F));
        }
    }
    *d = '\0';
    return out;
}

char *json_quote(const char *s)
{
    char *u = utf8_from_name(s);
    if (!u) return NULL;
    size_t n = strlen(u), m = mcnn_json_escape(NULL, u, n);
    char *q = malloc(m + 1);
    if (q) {
        mcnn_json_escape(q, u, n);
        q[m] = '\0';
    }
    free(u);
    return q;
}

/* Display columns of a code point: a short table of the wide (East Asian, emoji) and the
 * zero-width (combining, joiners, variation selectors) ranges; everything else is 1. */
static int columns_of(unsigned cp)
{
    static const unsigned zero[][2] = {{0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD},
                                       {0x0610, 0x061A}, {0x064B, 0x065F}, {0x1AB0, 0x1AFF},
                                       {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x20D0, 0x20FF},
                                       {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}};
    static const unsigned wide[][2] = {{0x1100, 0x115F}, {0x2E80, 0x303E}, {0x3041, 0x33FF},
                                       {0x3400, 0x4DBF}, {0x4E00, 0x9FFF}, {0xA000, 0xA4CF},
                                       {0xAC00, 0xD7A3}, {0xF900, 0xFAFF}, {0xFE30, 0xFE4F},
                                       {0xFF00, 0xFF60}, {0xFFE0, 0xFFE6}, {0x1F300, 0x1F64F},
                                       {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD}};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (cp >= zero[i][0] && cp <= zero[i][1]) return 0;
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
        if (cp >= wide[i][0] && cp <= wide[i][1]) return 2;
    return 1;
}

char *display_text(const char *s, int *columns)
{
    const size_t n = strlen(s);
    char *out = malloc(4 * n + 1), *d = out; /* a byte becomes at most "\xNN" */
    if (!out) return NULL;
    int w = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char c = (unsigned char)s[i];
        size_t k = utf8_sequence(s + i, n - i);
        unsigned cp = k ? code_point((const unsigned char *)s + i, k) : 0;
        if (k && cp >= 0x20 && cp != 0x7F && !(cp >= 0x80 && cp < 0xA0)) {
            memcpy(d, s + i, k);
            d += k, i += k;
            w += columns_of(cp);
            continue;
        }
        const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (named) {
            memcpy(d, named, 2);
            d += 2, w += 2, i++;
            continue;
        }
        for (size_t j = 0; j < (k ? k : 1); j++) /* a C1 control is two bytes: both shown */
            d += sprintf(d, "\\x%02x", (unsigned char)s[i + j]), w += 4;
        i += k ? k : 1;
    }
    *d = '\0';
    if (columns) *columns = w;
    return out;
}

char *display_fit(const char *s, int width)
{
    int w;
    char *t = display_text(s, &w);
    if (!t) return NULL;
    const size_t n = strlen(t);
    char *out = malloc(n + (size_t)(width > 0 ? width : 0) + 4);
    if (!out) return free(t), NULL;
    const char *start = t;
    if (w > width && width >= 1) { /* drop characters from the front, "…" (1 column) instead */
        while (*start && w + 1 > width) {
            size_t k = utf8_sequence(start, strlen(start));
            w -= columns_of(code_point((const unsigned char *)start, k));
            start += k;
        }
        strcpy(out, "\xE2\x80\xA6");
        w++;
    } else {
        out[0] = '\0';
    }
    strcat(out, start);
    for (size_t e = strlen(out); w < width; w++) out[e++] = ' ', out[e] = '\0';
    free(t);
    return out;
}
