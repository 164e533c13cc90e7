/* The BPE merge loop, twice: Python's loop as written (the reference, used for ordinary words)
 * and the same result in O(n log n) with a heap (for long pieces, where Python's loop is
 * quadratic: a 100 000-letter "word" takes seconds).  tests/test_tokenizer.c compares the two.
 *
 * SimpleTokenizer.bpe, the rule both follow:
 *     while the word has 2+ symbols:
 *         (a, b) = the adjacent pair with the lowest rank; stop if no pair has one
 *         merge every occurrence of (a, b), scanning left to right ("a a a" -> "aa a")
 * Ranks identify pairs (one rank per pair), so "the lowest rank" is never a tie. */
#include "text/bpe_internal.h"

/* The rank of merging symbols a and b (and the merged symbol), or INT32_MAX. */
static int32_t pair_rank(const mcnn_tokenizer *t, int a, int b, int *merged)
{
    uint64_t key = mcnn_bpe_pair_key(a, b);
    for (size_t i = mcnn_bpe_pair_hash(key) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        if (t->pair_key[i] == key) {
            *merged = t->pair_sym[i];
            return t->pair_rank[i];
        }
        if (t->pair_key[i] == 0) return INT32_MAX;
    }
}

size_t mcnn_bpe_merge_plain(const mcnn_tokenizer *t, int *w, size_t len)
{
    while (len > 1) {
        int32_t best = INT32_MAX;
        int a = -1, b = -1, merged = -1;
        for (size_t i = 0; i + 1 < len; i++) {
            int sym;
            int32_t r = pair_rank(t, w[i], w[i + 1], &sym);
            if (r < best) best = r, a = w[i], b = w[i + 1], merged = sym;
        }
        if (best == INT32_MAX) break;
        size_t o = 0;
        for (size_t i = 0; i < len;) {
            if (i + 1 < len && w[i] == a && w[i + 1] == b) {
                w[o++] = merged;
                i += 2;
            } else {
                w[o++] = w[i++];
            }
        }
        len = o;
    }
    return len;
}

/* ---- the heap version -----------------------------------------------------------------------
 * Symbols become a linked list (a merge keeps the left node and unlinks the right one, so nodes
 * stay in left-to-right order by index).  Every adjacent pair that has a rank goes into a
 * min-heap keyed (rank, left node), so the occurrences of one pair come out left to right.
 * Each round pops every entry of the lowest rank before merging anything: a merge can create a
 * pair of lower rank, and Python still finishes the current pair everywhere first.  Entries
 * that earlier merges made stale are recognised by re-reading the pair's rank, and skipped. */
static void heap_push(uint64_t *h, size_t *n, uint64_t v)
{
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
    return top;
}

/* Push the pair starting at node i, if it has a rank. */
static void push_pair(const mcnn_tokenizer *t, uint64_t *heap, size_t *nh, const int *w,
                      const int *next, int i)
{
    int merged;
    if (i < 0 || next[i] < 0) return;
    int32_t r = pair_rank(t, w[i], w[next[i]], &merged);
    if (r != INT32_MAX) heap_push(heap, nh, ((uint64_t)(uint32_t)r << 32) | (uint32_t)i);
}

size_t mcnn_bpe_merge_heap(const mcnn_tokenizer *t, int *w, size_t len, int *scratch,
                           uint64_t *heap)
{
    int *next = scratch, *prev = scratch + len, *batch = scratch + 2 * len;
    size_t nh = 0, count = len;
    for (size_t i = 0; i < len; i++) {
        next[i] = i + 1 < len ? (int)i + 1 : -1;
        prev[i] = (int)i - 1;
    }
    for (size_t i = 0; i + 1 < len; i++) push_pair(t, heap, &nh, w, next, (int)i);
    while (nh > 0 && count > 1) {
        int32_t rank = (int32_t)(heap[0] >> 32);
        size_t nb = 0;
        while (nh > 0 && (int32_t)(heap[0] >> 32) == rank)
            batch[nb++] = (int)(uint32_t)heap_pop(heap, &nh); /* ascending node order */
        for (size_t k = 0; k < nb; k++) {
            int p = batch[k], q, merged = -1;
            if (w[p] < 0 || (q = next[p]) < 0 || pair_rank(t, w[p], w[q], &merged) != rank)
                continue; /* stale: an earlier merge changed this pair */
            w[p] = merged, w[q] = -1;
            next[p] = next[q];
            if (next[q] >= 0) prev[next[q]] = p;
            count--;
            push_pair(t, heap, &nh, w, next, prev[p]); /* the two new neighbours */
            push_pair(t, heap, &nh, w, next, p);
        }
    }
    size_t o = 0; /* compact the list back into w (node 0 is never unlinked) */
    for (int i = 0; i >= 0; i = next[i]) w[o++] = w[i];
    return o;
}
