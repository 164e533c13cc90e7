/* The text cleaning SimpleTokenizer.encode does before splitting, step by step:
 *
 *   text = ftfy.fix_text(text)                  -- taken as the identity (see tokenizer.h)
 *   text = html.unescape(html.unescape(text))   -- "&amp;lt;" becomes "<"
 *   text = text.strip()                         -- str.isspace characters
 *   text = re.sub(r'\s+', ' ', text)            -- the regex module's \s
 *   text = text.strip()
 *   text = text.lower()                         -- full mappings, final sigma
 *
 * All on code points; the two "whitespace" sets differ (str.isspace also has U+001C..U+001F). */
#include "text/bpe_internal.h"
#include "text/html.h"
#include "text/unicode.h"

#include <stdlib.h>
#include <string.h>

static size_t strip_py(uint32_t *s, size_t n)
{
    size_t a = 0;
    while (a < n && mcnn_u_is_space_py(s[a])) a++;
    while (n > a && mcnn_u_is_space_py(s[n - 1])) n--;
    if (a) memmove(s, s + a, (n - a) * sizeof *s);
    return n - a;
}

static size_t collapse_spaces(uint32_t *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (mcnn_u_is_space_re(s[i])) {
            while (i < n && mcnn_u_is_space_re(s[i])) i++;
            s[o++] = ' ';
        } else {
            s[o++] = s[i++];
        }
    }
    return o;
}

mcnn_status mcnn_text_clean(uint32_t **out, size_t *n_out, const char *text, size_t len)
{
    *out = NULL;
    *n_out = 0;
    /* lower() may turn one code point into up to 3: size for that from the start */
    int overflow = 0;
    size_t cap = mcnn_mul_size(len + 1, 3 * sizeof(uint32_t), &overflow);
    uint32_t *a = overflow ? NULL : malloc(cap), *b = overflow ? NULL : malloc(cap);
    if (!a || !b) {
        free(a), free(b);
        return mcnn_set_error(MCNN_ERR_NOMEM, "tokenizer: no memory for a text of %zu bytes", len);
    }
    size_t bad = 0;
    long n = mcnn_utf8_decode(a, (const unsigned char *)text, len, &bad);
    if (n < 0) {
        free(a), free(b);
        return mcnn_set_error(MCNN_ERR_ARG,
                              "tokenizer: the text is not valid UTF-8 (byte %zu of %zu is 0x%02X)",
                              bad, len, (unsigned)(unsigned char)text[bad]);
    }
    size_t m = (size_t)n;
    m = mcnn_html_unescape(a, a, m);
    m = mcnn_html_unescape(a, a, m);
    m = strip_py(a, m);
    m = collapse_spaces(a, m);
    m = strip_py(a, m);
    m = mcnn_u_lower_str(b, a, m);
    free(a);
    *out = b;
    *n_out = m;
    return MCNN_OK;
}

mcnn_status mcnn_tokenizer_clean(const char *text, char **out)
{
    if (!text || !out) return mcnn_set_error(MCNN_ERR_ARG, "tokenizer_clean: NULL argument");
    *out = NULL;
    uint32_t *cps;
    size_t n;
    MCNN_TRY(mcnn_text_clean(&cps, &n, text, strlen(text)));
    char *s = malloc(4 * n + 1);
    if (!s) {
        free(cps);
        return mcnn_set_error(MCNN_ERR_NOMEM, "tokenizer_clean: no memory");
    }
    size_t len = mcnn_utf8_encode((unsigned char *)s, cps, n);
    s[len] = '\0';
    free(cps);
    *out = s;
    return MCNN_OK;
}
