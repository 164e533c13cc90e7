/* Split files as MovieCLIP writes them, "<video>/<shot> <label index> ...": the reader the
 * subcommands share (mcnn-train reads the same lines as image paths); see shots.h. */
#define _XOPEN_SOURCE 700
#include "shots.h"

#include "../common/args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const split_set *sort_target; /* qsort has no context argument */

static int by_key(const void *a, const void *b)
{
    return strcmp(sort_target->keys[*(const int *)a], sort_target->keys[*(const int *)b]);
}

int split_find(const split_set *s, const char *key)
{
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2, c = strcmp(s->keys[s->order[mid]], key);
        if (c == 0) return s->order[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int split_read(split_set *s, const char *path, int K, char *err, size_t errsize)
{
    memset(s, 0, sizeof *s);
    s->K = K;
    FILE *f = fopen(path, "r");
    if (!f) return fail_with(err, errsize, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, room = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *save = NULL, *key = strtok_r(line, " \t\r\n", &save);
        if (!key || key[0] == '#') continue;
        if (s->n == room) {
            room = room ? 2 * room : 256;
            s->keys = realloc(s->keys, (size_t)room * sizeof *s->keys);
            s->first = realloc(s->first, (size_t)room * sizeof *s->first);
            s->targets = realloc(s->targets, (size_t)room * K);
            if (!s->keys || !s->first || !s->targets) app_error("out of memory"), exit(1);
        }
        unsigned char *t = s->targets + (size_t)s->n * K;
        memset(t, 0, (size_t)K);
        int nlab = 0;
        for (char *tok; rc == 0 && (tok = strtok_r(NULL, " \t\r\n", &save));) {
            char *end;
            errno = 0;
            const long v = strtol(tok, &end, 10);
            if (*end || end == tok || errno || v < 0 || v >= K)
                rc = fail_with(err, errsize, "%s:%d: '%s' is not a label index (0 to %d)", path,
                               lineno, tok, K - 1);
            else if (!t[v]) {
                if (nlab++ == 0) s->first[s->n] = (int32_t)v;
                t[v] = 1;
            }
        }
        if (rc == 0 && nlab == 0)
            rc = fail_with(err, errsize, "%s:%d: '%s' has no label index", path, lineno, key);
        if (rc == 0) s->keys[s->n++] = shots_strdup(key);
    }
    free(line);
    fclose(f);
    if (rc == 0 && s->n == 0) rc = fail_with(err, errsize, "%s: no '<shot> <label index>' lines", path);
    if (rc == 0) {
        s->order = shots_xmalloc((size_t)s->n * sizeof *s->order);
        for (int i = 0; i < s->n; i++) s->order[i] = i;
        sort_target = s;
        qsort(s->order, (size_t)s->n, sizeof *s->order, by_key);
        for (int i = 1; i < s->n && rc == 0; i++)
            if (strcmp(s->keys[s->order[i]], s->keys[s->order[i - 1]]) == 0)
                rc = fail_with(err, errsize, "%s: '%s' is listed twice", path, s->keys[s->order[i]]);
    }
    if (rc) split_free(s);
    return rc;
}

void split_free(split_set *s)
{
    for (int i = 0; i < s->n; i++) free(s->keys[i]);
    free(s->keys), free(s->targets), free(s->first), free(s->order);
    memset(s, 0, sizeof *s);
}
