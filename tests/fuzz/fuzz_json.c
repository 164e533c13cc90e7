/* Fuzz the strict JSON parser (lib/io/json.c), then walk what it accepted: every string must be
 * valid UTF-8 of its stated length and escape back to JSON that parses again. */
#include "io/json.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

/* The value s[0..n) as a JSON string literal must parse back to the same bytes. */
static void check_roundtrip(const char *s, size_t n)
{
    size_t m = mcnn_json_escape(NULL, s, n);
    char *lit = malloc(m + 1);
    if (!lit) return;
    if (mcnn_json_escape(lit, s, n) != m) abort();
    mcnn_json_doc doc;
    if (mcnn_json_parse(&doc, lit, m) != MCNN_OK) abort();
    if (doc.root->type != MCNN_JSON_STRING || doc.root->len != n || memcmp(doc.root->str, s, n))
        abort();
    mcnn_json_free(&doc);
    free(lit);
}

static void walk(const mcnn_json *v, int depth)
{
    if (depth > MCNN_JSON_MAX_DEPTH + 1) abort(); /* the parser promised to refuse this */
    if (v->type == MCNN_JSON_STRING) {
        if (!mcnn_utf8_valid(v->str, v->len) || v->str[v->len] != 0) abort();
        check_roundtrip(v->str, v->len);
    }
    if (v->key && !mcnn_utf8_valid(v->key, v->key_len)) abort();
    size_t count = 0;
    for (const mcnn_json *c = v->child; c; c = c->next, count++) walk(c, depth + 1);
    if ((v->type == MCNN_JSON_ARRAY || v->type == MCNN_JSON_OBJECT) && count != v->count) abort();
    if (v->type == MCNN_JSON_OBJECT) {
        mcnn_json_first_duplicate(v);
        const mcnn_json *first = v->child;
        if (first && strlen(first->key) == first->key_len && mcnn_json_get(v, first->key) != first)
            abort();
    }
    if (v->type == MCNN_JSON_ARRAY && v->count && !mcnn_json_at(v, v->count - 1)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mcnn_json_doc doc;
    if (mcnn_json_parse(&doc, (const char *)data, size) != MCNN_OK) return 0;
    walk(doc.root, 0);
    mcnn_json_free(&doc);
    return 0;
}
