/* The CLIP text tokenizer: byte-level BPE with exact parity to OpenAI's clip/simple_tokenizer.py
 * and clip.tokenize.
 *
 *   mcnn_tokenizer *tok;
 *   MCNN_TRY(mcnn_tokenizer_load(&tok, "bpe_simple_vocab_16e6.txt.gz"));
 *   int32_t ids[77];
 *   int n;
 *   MCNN_TRY(mcnn_tokenizer_tokenize(tok, "a photo of a cat", ids, 77, 1, &n));
 *   // ids = 49406 320 1125 539 320 2368 49407 0 0 ...   n = 7, the EOT at ids[n - 1]
 *   mcnn_tokenizer_free(tok);
 *
 * Text goes through simple_tokenizer's steps: html.unescape twice, strip, runs of whitespace to
 * one space, Python's str.lower, the pre-tokenising pattern (with Unicode letters and digits),
 * then BPE on the UTF-8 bytes of each piece.  One difference, by necessity: simple_tokenizer
 * first runs ftfy.fix_text (mojibake repair, NFC, curly quotes to straight, ligatures...), which
 * is not reimplemented here; it is taken as the identity, as the reference files' "ftfy: stub
 * (identity)" say.  Plain, well-formed text is unaffected; see docs/tokenizer.md.
 *
 * Input text is UTF-8 (NUL-terminated); invalid UTF-8 (overlongs, surrogates, truncated or stray
 * bytes) is refused with MCNN_ERR_ARG and the offset of the first bad byte.  A loaded tokenizer
 * is never modified, so one tokenizer may serve several threads at once. */
#ifndef MCNN_TOKENIZER_H
#define MCNN_TOKENIZER_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcnn_tokenizer mcnn_tokenizer;

/* Load a vocabulary, recognised by content, not by name:
 *  - OpenAI's merges file, gzipped (bpe_simple_vocab_16e6.txt.gz) or not: the vocabulary is
 *    built as SimpleTokenizer.__init__ does (256 byte symbols, the same with "</w>", one token
 *    per merge of lines 1..48894, then <|startoftext|> and <|endoftext|>).  Hugging Face's
 *    merges.txt alone also loads this way and gives the same ids for CLIP.  The file must give
 *    CLIP's 49408 tokens: a shorter one (truncated, or not a merges file) is refused.
 *  - Hugging Face's vocab.json (a JSON object, token -> id): merges.txt must be in the same
 *    folder; ids are vocab.json's, and its size may be any that the two files agree on.
 * Every file is checked (docs/tokenizer.md, "What a vocabulary must be"); errors name the
 * file and the line.  Files over 64 MB, or gzips inflating to more, are refused. */
MCNN_API mcnn_status mcnn_tokenizer_load(mcnn_tokenizer **out, const char *path);
/* Hugging Face's pair, from anywhere. */
MCNN_API mcnn_status mcnn_tokenizer_load_hf(mcnn_tokenizer **out, const char *vocab_json_path,
                                            const char *merges_txt_path);
/* A merges file for a vocabulary of vocab_size tokens (514 .. 49408: 512 byte tokens, one per
 * merge, 2 special tokens), such as a model with a smaller token embedding needs.  The file
 * must hold at least vocab_size - 514 merges; later lines are ignored. */
MCNN_API mcnn_status mcnn_tokenizer_load_merges(mcnn_tokenizer **out, const char *path,
                                                int vocab_size);
MCNN_API void mcnn_tokenizer_free(mcnn_tokenizer *tok);

MCNN_API int mcnn_tokenizer_vocab_size(const mcnn_tokenizer *tok); /* largest id + 1: 49408 */
MCNN_API int32_t mcnn_tokenizer_sot(const mcnn_tokenizer *tok);    /* <|startoftext|>: 49406 */
MCNN_API int32_t mcnn_tokenizer_eot(const mcnn_tokenizer *tok);    /* <|endoftext|>: 49407   */

/* SimpleTokenizer.encode: the BPE ids of text, without SOT/EOT.  *n receives the number of ids
 * the text needs; ids receives the first min(*n, max_ids).  When *n > max_ids the result is
 * MCNN_ERR_ARG, so a caller can ask with max_ids = 0 and call again with enough room. */
MCNN_API mcnn_status mcnn_tokenizer_encode(const mcnn_tokenizer *tok, const char *text,
                                           int32_t *ids, int max_ids, int *n);

/* clip.tokenize for one text: out[context] = SOT, the ids, EOT, then zeros.  Note that id 0 is
 * "!", so padding is not an end marker: *length (may be NULL) receives the number of tokens
 * before the padding, EOT included (the EOT is at out[*length - 1]).  Too long for context:
 * with truncate = 0 the result is MCNN_ERR_ARG (clip.tokenize raises); with truncate = 1 the
 * first context tokens are kept and the last of them replaced by EOT. */
MCNN_API mcnn_status mcnn_tokenizer_tokenize(const mcnn_tokenizer *tok, const char *text,
                                             int32_t *out, int context, int truncate,
                                             int *length);

/* SimpleTokenizer.decode: the tokens' bytes, invalid UTF-8 replaced by U+FFFD as Python's
 * errors="replace" does, every "</w>" turned into a space.  *text is NUL-terminated and
 * allocated with malloc (free() it).  An id outside the vocabulary is MCNN_ERR_ARG. */
MCNN_API mcnn_status mcnn_tokenizer_decode(const mcnn_tokenizer *tok, const int32_t *ids, int n,
                                           char **text);

/* The text encode actually splits: html.unescape twice, strip, whitespace runs to one space,
 * str.lower.  *out is allocated with malloc (free() it).  For tests and for curious users. */
MCNN_API mcnn_status mcnn_tokenizer_clean(const char *text, char **out);

#ifdef __cplusplus
}
#endif
#endif
