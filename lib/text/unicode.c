/* UTF-8 and the Python string functions the CLIP tokenizer depends on (see unicode.h). */
#include "text/unicode.h"

#include <string.h>

int mcnn_u_in(const mcnn_u_range *r, int n, uint32_t cp)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid - 1;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

int mcnn_u_is_space_re(uint32_t cp)
{
    if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
    return mcnn_u_in(mcnn_u_space, mcnn_u_space_n, cp);
}

int mcnn_u_is_space_py(uint32_t cp)
{
    if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r') || (cp >= 0x1C && cp <= 0x1F);
    return mcnn_u_in(mcnn_u_isspace, mcnn_u_isspace_n, cp);
}

int mcnn_u_class(uint32_t cp)
{
    if (cp < 0x80) { /* the common case, without a search */
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return MCNN_U_LETTER;
        if (cp >= '0' && cp <= '9') return MCNN_U_NUMBER;
        if (cp == ' ' || (cp >= '\t' && cp <= '\r')) return MCNN_U_SPACE;
        return MCNN_U_OTHER;
    }
    if (mcnn_u_in(mcnn_u_letter, mcnn_u_letter_n, cp)) return MCNN_U_LETTER;
    if (mcnn_u_in(mcnn_u_number, mcnn_u_number_n, cp)) return MCNN_U_NUMBER;
    if (mcnn_u_in(mcnn_u_space, mcnn_u_space_n, cp)) return MCNN_U_SPACE;
    if (mcnn_u_in(mcnn_u_none, mcnn_u_none_n, cp)) return MCNN_U_NONE;
    return MCNN_U_OTHER;
}

int mcnn_u_matches_literal(uint32_t cp, uint32_t lit)
{
    if (cp == lit) return 1;
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z' && cp + 32 == lit; /* as the table says */
    for (int i = 0; i < mcnn_u_fold_eq_n; i++)
        if (mcnn_u_fold_eq[i][0] == lit && mcnn_u_fold_eq[i][1] == cp) return 1;
    return 0;
}

/* One-to-one lower-case mapping (cp itself when there is none). */
static uint32_t lower1(uint32_t cp)
{
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    int lo = 0, hi = mcnn_u_lower_n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const mcnn_u_lower_run *r = &mcnn_u_lower[mid];
        if (cp < r->lo) hi = mid - 1;
        else if (cp > r->hi) lo = mid + 1;
        else return ((cp - r->lo) % (uint32_t)r->stride == 0) ? (uint32_t)((int32_t)cp + r->delta) : cp;
    }
    return cp;
}

static int case_ignorable(uint32_t cp)
{
    return mcnn_u_in(mcnn_u_case_ignorable, mcnn_u_case_ignorable_n, cp);
}

/* CPython's handle_capital_sigma: Σ at i becomes final ς when a cased letter comes before it
 * and none after it, case-ignorable code points being skipped in both directions. */
static int final_sigma(const uint32_t *s, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && case_ignorable(s[j - 1])) j--;
    if (j == 0 || !mcnn_u_in(mcnn_u_cased, mcnn_u_cased_n, s[j - 1])) return 0;
    j = i + 1;
    while (j < n && case_ignorable(s[j])) j++;
    return j == n || !mcnn_u_in(mcnn_u_cased, mcnn_u_cased_n, s[j]);
}

size_t mcnn_u_lower_str(uint32_t *out, const uint32_t *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = s[i];
        if (cp == 0x3A3) {
            out[o++] = final_sigma(s, n, i) ? 0x3C2 : 0x3C3;
            continue;
        }
        int special = 0;
        if (cp >= 0x80)
            for (int k = 0; k < mcnn_u_lower_special_n; k++)
                if (mcnn_u_lower_special[k].cp == cp) {
                    for (int m = 0; m < mcnn_u_lower_special[k].n; m++)
                        out[o++] = mcnn_u_lower_special[k].to[m];
                    special = 1;
                    break;
                }
        if (!special) out[o++] = lower1(cp);
    }
    return o;
}

/* ---- UTF-8 ----------------------------------------------------------------------------------
 * Well-formed sequences (Unicode Table 3-7): the second byte's range depends on the first:
 *   C2..DF 80..BF | E0 A0..BF | E1..EC,EE..EF 80..BF | ED 80..9F | F0 90..BF | F1..F3 80..BF |
 *   F4 80..8F, each followed by 80..BF as needed.  Everything else is invalid. */
static int seq_len(unsigned char b0) /* 0: not a valid first byte */
{
    if (b0 < 0x80) return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) return 2;
    if (b0 >= 0xE0 && b0 <= 0xEF) return 3;
    if (b0 >= 0xF0 && b0 <= 0xF4) return 4;
    return 0;
}

static int second_ok(unsigned char b0, unsigned char b1)
{
    unsigned lo = 0x80, hi = 0xBF;
    if (b0 == 0xE0) lo = 0xA0;
    else if (b0 == 0xED) hi = 0x9F;
    else if (b0 == 0xF0) lo = 0x90;
    else if (b0 == 0xF4) hi = 0x8F;
    return b1 >= lo && b1 <= hi;
}

int mcnn_utf8_scan(const unsigned char *s, size_t n, size_t i)
{
    int len = seq_len(s[i]);
    if (len == 0) return -1;
    for (int k = 1; k < len; k++) {
        if (i + k >= n) return -k;
        unsigned char b = s[i + k];
        int ok = (k == 1) ? second_ok(s[i], b) : (b >= 0x80 && b <= 0xBF);
        if (!ok) return -k;
    }
    return len;
}

static uint32_t value(const unsigned char *s, int len)
{
    if (len == 1) return s[0];
    uint32_t cp = s[0] & (0x7F >> len);
    for (int k = 1; k < len; k++) cp = (cp << 6) | (s[k] & 0x3F);
    return cp;
}

long mcnn_utf8_decode(uint32_t *out, const unsigned char *s, size_t n, size_t *bad_at)
{
    long o = 0;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            out[o++] = s[i++];
            continue;
        }
        int len = mcnn_utf8_scan(s, n, i);
        if (len < 0) {
            if (bad_at) *bad_at = i;
            return -1;
        }
        out[o++] = value(s + i, len);
        i += (size_t)len;
    }
    return o;
}

size_t mcnn_utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int len = mcnn_utf8_scan(s, n, i);
        if (len < 0) return i;
        i += (size_t)len;
    }
    return n;
}

uint32_t mcnn_utf8_next(const unsigned char *s, size_t *i)
{
    int len = s[*i] < 0x80 ? 1 : s[*i] < 0xE0 ? 2 : s[*i] < 0xF0 ? 3 : 4;
    uint32_t cp = value(s + *i, len);
    *i += (size_t)len;
    return cp;
}

int mcnn_utf8_put(unsigned char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t mcnn_utf8_encode(unsigned char *out, const uint32_t *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += (size_t)mcnn_utf8_put(out + o, s[i]);
    return o;
}

size_t mcnn_utf8_replace_invalid(unsigned char *out, const unsigned char *s, size_t n)
{
    size_t o = 0, i = 0;
    while (i < n) {
        int len = s[i] < 0x80 ? 1 : mcnn_utf8_scan(s, n, i);
        if (len > 0) {
            for (int k = 0; k < len; k++) out[o++] = s[i + k];
            i += (size_t)len;
        } else { /* one U+FFFD for the maximal subpart, then resume at the byte that broke it */
            out[o++] = 0xEF, out[o++] = 0xBF, out[o++] = 0xBD;
            i += (size_t)(-len);
        }
    }
    return o;
}

/* Controls (C0, DEL, C1) and bytes that are not UTF-8 become '?'; at most 40 bytes are kept,
 * cut at a character boundary. */
const char *mcnn_utf8_excerpt(char buf[MCNN_EXCERPT_SIZE], const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t o = 0, i = 0;
    while (i < n && o < 40) {
        int len = s[i] < 0x80 ? 1 : mcnn_utf8_scan(s, n, i);
        int control = s[i] < 0x20 || s[i] == 0x7F || (s[i] == 0xC2 && len == 2 && s[i + 1] < 0xA0);
        if (len <= 0 || control) {
            buf[o++] = '?';
            i += len < 0 ? (size_t)-len : (size_t)len;
            continue;
        }
        if (o + (size_t)len > 40) break;
        memcpy(buf + o, s + i, (size_t)len);
        o += (size_t)len, i += (size_t)len;
    }
    if (i < n) memcpy(buf + o, "...", 3), o += 3;
    buf[o] = '\0';
    return buf;
}
