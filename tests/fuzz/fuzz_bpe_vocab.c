/* Fuzz the BPE vocabulary loader (lib/text/bpe_vocab.c): the input alone as a merges file
 * (gzipped or not) or a vocab.json, or, cut at FUZZ_SEPARATOR, as Hugging Face's
 * vocab.json + merges.txt.  Whatever loads must encode and decode a short text. */
#include "fuzz.h"

#include <stdlib.h>

static void use(mcnn_tokenizer *tok)
{
    int32_t ids[32];
    int n = 0;
    if (mcnn_tokenizer_encode(tok, "a photo of a cat, 12 <|endoftext|>!", ids, 32, &n) == MCNN_OK) {
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= mcnn_tokenizer_vocab_size(tok)) abort();
        char *text;
        if (mcnn_tokenizer_decode(tok, ids, n, &text) == MCNN_OK) free(text);
    }
    mcnn_tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *vocab, *merges;
    size_t vocab_size, merges_size;
    mcnn_tokenizer *tok;
    if (fuzz_split(data, size, &vocab, &vocab_size, &merges, &merges_size)) {
        const char *vp = fuzz_file(0, vocab, vocab_size), *mp = fuzz_file(1, merges, merges_size);
        if (vp && mp && mcnn_tokenizer_load_hf(&tok, vp, mp) == MCNN_OK) use(tok);
        return 0;
    }
    const char *path = fuzz_file(0, data, size);
    if (path && mcnn_tokenizer_load(&tok, path) == MCNN_OK) use(tok);
    return 0;
}
