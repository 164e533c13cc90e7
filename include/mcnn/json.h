/* A small strict JSON (RFC 8259) parser: the one the library reads vocab.json and safetensors
 * headers with, public so that applications read JSON the same strict way (mcnn-classify's
 * JSONL, mcnn-shots' tags).  Thread-safe: a document is its caller's.
 *
 * mcnn_json_parse() turns a text into a tree of nodes living in ONE allocation: a quick
 * pre-scan bounds the number of values and string bytes, so parsing never reallocates and
 * freeing is a single call.  Strings are decoded to UTF-8 (escapes and \u surrogate pairs
 * resolved) and NUL-terminated.  Numbers keep both a double and, when written as an integer
 * that fits, the exact int64 (2^53 < n < 2^63 stays exact).
 *
 *   mcnn_json_doc doc;
 *   MCNN_TRY(mcnn_json_parse(&doc, text, len));           // error names the byte offset
 *   for (const mcnn_json *m = doc.root->child; m; m = m->next)
 *       use(m->key, m->str);                                // members keep source order
 *   mcnn_json_free(&doc);
 *
 * Rejected: trailing garbage, nesting deeper than MCNN_JSON_MAX_DEPTH, control characters in
 * strings, invalid UTF-8, lone surrogates, leading zeros, "NaN", comments, trailing commas.
 * Duplicate keys are kept (JSON allows them); callers that care check with
 * mcnn_json_first_duplicate(). */
#ifndef MCNN_JSON_H
#define MCNN_JSON_H

#include "core.h"
#include "utf8.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MCNN_JSON_MAX_DEPTH 256

typedef enum mcnn_json_type {
    MCNN_JSON_NULL,
    MCNN_JSON_BOOL,
    MCNN_JSON_NUMBER,
    MCNN_JSON_STRING,
    MCNN_JSON_ARRAY,
    MCNN_JSON_OBJECT
} mcnn_json_type;

typedef struct mcnn_json {
    mcnn_json_type type;
    int boolean;              /* BOOL: 0 or 1                                                 */
    int is_int;               /* NUMBER without fraction or exponent that fits int64           */
    int64_t i;                /* NUMBER: the exact value when is_int                           */
    double num;               /* NUMBER: the value as a double (always set)                    */
    const char *str;          /* STRING: decoded UTF-8, NUL-terminated                         */
    size_t len;               /* STRING: bytes (a "\u0000" escape makes len > strlen(str))      */
    size_t count;             /* ARRAY / OBJECT: number of children                            */
    struct mcnn_json *child;  /* ARRAY / OBJECT: first child, then follow ->next               */
    struct mcnn_json *next;   /* next sibling, NULL at the end                                 */
    const char *key;          /* member of an OBJECT: its decoded key; else NULL               */
    size_t key_len;
    size_t pos;               /* byte offset of the value in the text, for error messages      */
} mcnn_json;

typedef struct mcnn_json_doc {
    mcnn_json *root;
    void *block; /* every node and string; freed by mcnn_json_free */
} mcnn_json_doc;

/* Parse len bytes (no NUL needed).  On failure doc is empty and the error reads
 * "JSON: expected ':' after an object key at byte 17"; callers prefix the file name. */
MCNN_API mcnn_status mcnn_json_parse(mcnn_json_doc *doc, const char *text, size_t len);
MCNN_API void mcnn_json_free(mcnn_json_doc *doc);

/* The first member of obj named key, or NULL (also when obj is NULL or not an object). */
MCNN_API const mcnn_json *mcnn_json_get(const mcnn_json *obj, const char *key);
/* The i-th element of an array, or NULL.  Linear: iterate ->next for whole arrays. */
MCNN_API const mcnn_json *mcnn_json_at(const mcnn_json *arr, size_t i);
/* The second member of obj whose key repeats an earlier one, or NULL.  O(n log n). */
MCNN_API const mcnn_json *mcnn_json_first_duplicate(const mcnn_json *obj);
MCNN_API const char *mcnn_json_type_name(mcnn_json_type t); /* "object", "string", ... */

/* mcnn_utf8_valid() and mcnn_json_escape(), for writing JSON: utf8.h. */

#ifdef __cplusplus
}
#endif
#endif
