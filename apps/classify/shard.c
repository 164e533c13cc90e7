/* Which share of the inputs this process takes.  N processes started anywhere, each with the
 * same inputs and its own I in 0..N-1, split a collection without talking: an input (a video,
 * an image, a --shot-per-dir folder; the images of a folder one by one) belongs to shard
 * hash(name) mod N, where hash is FNV-1a over the name's bytes, finished with splitmix64's mixer
 * so that every bit counts.  The name is the one the outputs use: the path as given on the
 * command line, and for an image inside a folder the folder's name, '/', and its path inside
 * it.  A hash, not a position in a sorted list: a file keeps its shard when the collection
 * grows or another shard's list differs, at the price of shares that are even only on average
 * (a binomial spread: for 32 000 videos on 64 shards, 500 ± 22 each). */
#define _XOPEN_SOURCE 700
#include "classify.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const uint64_t fnv_basis = 0xcbf29ce484222325ULL;

int shard_takes(const shard *s, const char *name)
{
    if (!s || s->count <= 1) return 1;
    return mix(fnv1a(fnv_basis, name)) % (uint64_t)s->count == (uint64_t)s->index;
}

int shard_takes_image(const shard *s, const char *folder, const char *key)
{
    if (!s || s->count <= 1) return 1;
    const uint64_t h = fnv1a(fnv1a(fnv1a(fnv_basis, folder), "/"), key);
    return mix(h) % (uint64_t)s->count == (uint64_t)s->index;
}

/* A whole number in [lo, hi] with nothing after it. */
static int parse_int(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    return *out = v, 0;
}

/* A launcher's rank and size: both set and sane, else absent (0).  -1 when set but wrong. */
static int from_env(const char *rank_var, const char *size_var, long *rank, long *size)
{
    const char *r = getenv(rank_var), *n = getenv(size_var);
    if (!r || !n || !*r || !*n) return 0;
    if (parse_int(n, 1, 1000000000, size) || parse_int(r, 0, *size - 1, rank)) {
        app_error("%s=%s with %s=%s: not a rank in 0..size-1 (give --shard I/N)", rank_var, r,
                  size_var, n);
        return -1;
    }
    return 1;
}

int shard_choose(shard *s, const char *text)
{
    *s = (shard){0, 1, 0};
    if (text) {
        const char *slash = strchr(text, '/');
        char first[32];
        long i, n;
        if (!slash || slash - text >= (long)sizeof first) goto bad;
        snprintf(first, sizeof first, "%.*s", (int)(slash - text), text);
        if (parse_int(slash + 1, 1, 1000000000, &n) || parse_int(first, 0, n - 1, &i)) goto bad;
        s->index = (int)i, s->count = (int)n;
        return 0;
    bad:
        app_error("--shard: '%s' is not I/N with 0 <= I < N (e.g. 0/4)", text);
        return -1;
    }
    /* a process of a parallel launch: MPI's rank (Open MPI, then PMI: MPICH, Intel MPI, srun),
     * else Slurm's task; times a Slurm array's task, so an array of multi-task jobs works too */
    static const char *const launchers[][2] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                                               {"PMI_RANK", "PMI_SIZE"},
                                               {"SLURM_PROCID", "SLURM_NTASKS"}};
    long rank = 0, size = 1, arank = 0, asize = 1;
    char said[256] = "", part[128];
    for (int k = 0; k < 3; k++) {
        const int got = from_env(launchers[k][0], launchers[k][1], &rank, &size);
        if (got < 0) return -1;
        if (got) {
            snprintf(said, sizeof said, "%s=%ld of %s=%ld", launchers[k][0], rank,
                     launchers[k][1], size);
            break;
        }
    }
    const char *task = getenv("SLURM_ARRAY_TASK_ID"), *count = getenv("SLURM_ARRAY_TASK_COUNT");
    if (task && count && *task && *count) {
        long id, min = 0;
        const char *min_text = getenv("SLURM_ARRAY_TASK_MIN");
        if (parse_int(count, 1, 1000000000, &asize) || parse_int(task, 0, 2000000000, &id) ||
            (min_text && *min_text && parse_int(min_text, 0, id, &min)) || id - min >= asize) {
            app_error("SLURM_ARRAY_TASK_ID=%s, SLURM_ARRAY_TASK_COUNT=%s: not a task of a "
                      "contiguous array (use --array=0-%s minus 1 with a step of 1, or give "
                      "--shard I/N)", task, count, count);
            return -1;
        }
        arank = id - min;
        snprintf(part, sizeof part, "SLURM_ARRAY_TASK_ID=%ld (task %ld of %ld)", id, arank, asize);
        if (said[0]) strncat(said, " x ", sizeof said - strlen(said) - 1);
        strncat(said, part, sizeof said - strlen(said) - 1);
    }
    if (asize * size > 1000000000L) {
        app_error("%s: too many shards", said);
        return -1;
    }
    s->index = (int)(arank * size + rank);
    s->count = (int)(asize * size);
    s->automatic = s->count > 1;
    if (s->automatic)
        fprintf(stderr, "%s: shard %d/%d of the inputs, from %s (--shard I/N overrides)\n",
                app_name, s->index, s->count, said);
    return 0;
}

char *shard_path(const char *path, const shard *s)
{
    static const char mark[] = "{shard}";
    const char *at = path ? strstr(path, mark) : NULL;
    if (!path) return NULL;
    if (!at) return dup_str(path);
    char num[16];
    snprintf(num, sizeof num, "%d", s->index);
    const size_t n = strlen(path) - strlen(mark) + strlen(num) + 1;
    char *out = malloc(n);
    if (!out) app_error("out of memory"), exit(1);
    snprintf(out, n, "%.*s%s%s", (int)(at - path), path, num, at + strlen(mark));
    return out;
}
