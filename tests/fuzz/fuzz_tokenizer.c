/* Fuzz the tokenizer (lib/text/bpe.c, clean.c, html_unescape.c, unicode.c): the input as a text
 * to encode (clip.tokenize with and without truncation), and its bytes as ids to decode.  The
 * vocabulary is loaded once: OpenAI's (MCNN_SHARED/data/clip/bpe_simple_vocab_16e6.txt.gz)
 * when present, else the small one committed in tests/data. */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mcnn_tokenizer *vocabulary(void)
{
    static mcnn_tokenizer *tok;
    static int tried;
    if (tried) return tok;
    tried = 1;
    const char *shared = getenv("MCNN_SHARED");
    char path[1024];
    snprintf(path, sizeof path, "%s/data/clip/bpe_simple_vocab_16e6.txt.gz",
             shared ? shared : "../shared");
    if (mcnn_tokenizer_load(&tok, path) != MCNN_OK &&
        mcnn_tokenizer_load(&tok, "tests/data/tokenizer_hf/bpe_small.txt.gz") != MCNN_OK) {
        fprintf(stderr, "fuzz_tokenizer: no vocabulary: %s\n", mcnn_last_error());
        abort(); /* nothing to fuzz: say so loudly rather than pass every input */
    }
    return tok;
}

static void check_ids(const mcnn_tokenizer *tok, const int32_t *ids, int n)
{
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= mcnn_tokenizer_vocab_size(tok)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mcnn_tokenizer *tok = vocabulary();
    char *text = fuzz_strdup(data, size);
    if (!text) return 0;
    /* ask for the count (0 room: an error saying how many when there are any), then encode */
    int n = 0;
    mcnn_tokenizer_encode(tok, text, NULL, 0, &n);
    int32_t *ids = n > 0 ? malloc(sizeof(int32_t) * (size_t)n) : NULL;
    int m = 0;
    if (ids && mcnn_tokenizer_encode(tok, text, ids, n, &m) == MCNN_OK) {
        if (m != n) abort();
        check_ids(tok, ids, m);
        char *back;
        if (mcnn_tokenizer_decode(tok, ids, m, &back) == MCNN_OK) free(back);
    }
    free(ids);
    int32_t ctx[77];
    int length;
    for (int truncate = 0; truncate < 2; truncate++)
        if (mcnn_tokenizer_tokenize(tok, text, ctx, 77, truncate, &length) == MCNN_OK) {
            if (length < 2 || length > 77 || ctx[0] != mcnn_tokenizer_sot(tok) ||
                ctx[length - 1] != mcnn_tokenizer_eot(tok))
                abort();
            check_ids(tok, ctx, length);
        }
    char *clean;
    if (mcnn_tokenizer_clean(text, &clean) == MCNN_OK) free(clean);
    free(text);
    /* the bytes as ids: most are out of range (an error), some decode */
    int nid = (int)(size / 4);
    int32_t *raw = malloc(sizeof(int32_t) * (size_t)(nid ? nid : 1));
    if (raw) {
        memcpy(raw, data, (size_t)nid * 4);
        char *back;
        if (mcnn_tokenizer_decode(tok, raw, nid, &back) == MCNN_OK) free(back);
        free(raw);
    }
    return 0;
}
