/* --out-jsonl and --resume (the reader is ../common/tag_file.c).  See jsonl.h. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE /* flock */
#include "jsonl.h"

#include "../common/args.h"
#include "../common/escape.h"
#include "../common/outfile.h"

#include "mcnn/json.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- writing ------------------------------------------------------------------------------- */
struct jsonl {
    FILE *f;
    char *path;
    const char *const *labels;
    int L, top;
    int *order;                 /* (L) scratch for the ranking                          */
    char **done;                /* sorted: the inputs the file holds complete (resume)  */
    int ndone;
    int error;                  /* errno of the first failed write                      */
    char msg[600];
};

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check(jsonl *j)
{
    if (!j->error && (ferror(j->f) || fflush(j->f))) j->error = errno ? errno : EIO;
    if (j->error) snprintf(j->msg, sizeof j->msg, "%s: cannot write: %s", j->path,
                           strerror(j->error));
    return j->error ? -1 : 0;
}

/* Open (creating) and lock path for appending; -1 with a message when another process has it. */
static int open_locked(jsonl *j, char *err, size_t errsize)
{
    /* close-on-exec: ffmpeg (popen) must not inherit the file, nor its lock */
    const int fd = open(j->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return fail_with(err, errsize, "--out-jsonl %s: %s", j->path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int busy = errno == EWOULDBLOCK;
        fail_with(err, errsize, busy ? "--out-jsonl %s: another process is writing it (two "
                  "shards with the same file? put {shard} in its name)" : "--out-jsonl %s: %s",
                  j->path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!(j->f = fdopen(fd, "a"))) {
        close(fd);
        return fail_with(err, errsize, "--out-jsonl %s: %s", j->path, strerror(errno));
    }
    return 0;
}

/* Keep the lines of the inputs that ended without a failure.  When the lines dropped all come
 * after the kept ones (a run killed in an input: the usual case) the file is cut back to the
 * kept ones, in place and under the lock; otherwise (an input with failures in the middle) the
 * kept lines go to a new file that replaces it atomically, and the new file is locked. */
static int resume_from(jsonl *j, const tag_file *tf, char *err, size_t errsize)
{
    int64_t cut = 0, failed = 0, kept_bytes = (int64_t)strlen(tf->header) + 1;
    int prefix = 1, dropping = 0;
    j->done = calloc((size_t)tf->nrec + 1, sizeof *j->done);
    if (!j->done) return fail_with(err, errsize, "out of memory");
    for (int64_t i = 0; i < tf->nrec; i++) {
        const tag_record *t = &tf->rec[i];
        if (t->done && t->failed == 0) {
            if (!(j->done[j->ndone] = strdup(t->video)))
                return fail_with(err, errsize, "out of memory");
            j->ndone++;
        } else if (t->done) {
            failed++;
        }
    }
    qsort(j->done, (size_t)j->ndone, sizeof *j->done, by_string);
    for (int64_t i = 0; i < tf->nrec; i++) {
        const tag_record *t = &tf->rec[i];
        const int keep = jsonl_input_done(j, t->video);
        if (keep && dropping) prefix = 0;
        if (keep) kept_bytes += (int64_t)strlen(t->line) + 1;
        dropping |= !keep;
        cut += !keep && !t->done && (i + 1 == tf->nrec || strcmp(tf->rec[i + 1].video, t->video));
    }
    if (prefix) {
        fflush(j->f);
        if (ftruncate(fileno(j->f), (off_t)kept_bytes) || fsync(fileno(j->f)))
            return fail_with(err, errsize, "%s: cannot cut back: %s", j->path, strerror(errno));
    } else {
        outfile o;
        if (outfile_open(&o, j->path, err, errsize)) return -1;
        fprintf(o.f, "%s\n", tf->header);
        for (int64_t i = 0; i < tf->nrec; i++)
            if (jsonl_input_done(j, tf->rec[i].video)) fprintf(o.f, "%s\n", tf->rec[i].line);
        outfile_check(&o);
        if (outfile_commit(&o, err, errsize)) return -1;
        fclose(j->f); /* the replaced file's lock goes with it */
        j->f = NULL;
        if (open_locked(j, err, errsize)) return -1;
    }
    fprintf(stderr, "%s: resuming %s: %d input%s complete (skipped)", app_name, j->path, j->ndone,
            j->ndone == 1 ? "" : "s");
    if (cut) fprintf(stderr, ", %lld cut off mid-way (redone)", (long long)cut);
    if (failed) fprintf(stderr, ", %lld that had failures (tried again)", (long long)failed);
    if (tf->truncated) fprintf(stderr, ", a cut-off last line dropped");
    fputc('\n', stderr);
    return 0;
}

int jsonl_open(jsonl **out, const char *path, const char *header, const char *const *labels,
               int L, int top, int resume, char *err, size_t errsize)
{
    *out = NULL;
    jsonl *j = calloc(1, sizeof *j);
    if (!j || !(j->path = strdup(path)) ||
        !(j->order = malloc((size_t)L * sizeof(int))))
        return jsonl_close(j, NULL, 0), fail_with(err, errsize, "out of memory");
    j->labels = labels, j->L = L, j->top = top;
    struct stat st;
    const int exists = stat(path, &st) == 0 && st.st_size > 0;
    if (exists && !resume) {
        jsonl_close(j, NULL, 0);
        return fail_with(err, errsize, "--out-jsonl %s exists: add --resume to continue it, or "
                         "remove it", path);
    }
    if (open_locked(j, err, errsize)) return jsonl_close(j, NULL, 0), -1;
    tag_file tf = {0};
    if (exists && tag_file_read(&tf, path, err, errsize)) return jsonl_close(j, NULL, 0), -1;
    char what[128];
    if (tf.header && tag_headers_match(tf.header, header, what, sizeof what)) {
        tag_file_free(&tf);
        jsonl_close(j, NULL, 0);
        return fail_with(err, errsize, "--resume: %s was written by a run with other settings "
                         "(%s differs): give the same options, or another file", path, what);
    }
    int rc = 0;
    if (tf.header) {
        rc = resume_from(j, &tf, err, errsize);
    } else if (exists) { /* a header cut off as it was written: start again */
        fflush(j->f);
        if (ftruncate(fileno(j->f), 0))
            rc = fail_with(err, errsize, "%s: %s", path, strerror(errno));
    }
    tag_file_free(&tf);
    if (rc) return jsonl_close(j, NULL, 0), -1;
    if (ftell(j->f) == 0 && lseek(fileno(j->f), 0, SEEK_END) == 0)
        fprintf(j->f, "%s\n", header); /* a new file */
    if (check(j) || fsync(fileno(j->f))) {
        fail_with(err, errsize, "%s", j->msg[0] ? j->msg : strerror(errno));
        return jsonl_close(j, NULL, 0), -1;
    }
    *out = j;
    return 0;
}

int jsonl_input_done(const jsonl *j, const char *video)
{
    if (!j->ndone) return 0; /* (j->done may be NULL: bsearch must not see it) */
    char *name = utf8_from_name(video); /* as the file holds it */
    const char *key = name ? name : video;
    const int hit = bsearch(&key, j->done, (size_t)j->ndone, sizeof *j->done, by_string) != NULL;
    free(name);
    return hit;
}

static void put_string(FILE *f, const char *s)
{
    char *q = json_quote(s);
    fputs(q ? q : "\"\"", f);
    free(q);
}

int jsonl_shot(jsonl *j, const shot_out *s, int input)
{
    FILE *f = j->f;
    const int k = jsonl_labels_kept(j->top, j->L);
    rank_labels(j->order, s->scores, j->L, k);
    fputs("{\"video\": ", f);
    put_string(f, s->video);
    fprintf(f, ", \"input\": %d, \"n\": %lld, \"shot\": ", input, (long long)s->ordinal);
    put_string(f, s->key);
    fputs(", \"id\": ", f);
    put_string(f, s->id);
    fprintf(f, ", \"start_frame\": %lld, \"end_frame\": %lld, \"start_time\": %.3f, "
            "\"end_time\": %.3f, \"frames\": %d", (long long)s->start_frame,
            (long long)s->end_frame, s->start_time, s->end_time, s->frames);
    if (s->emb_row >= 0) fprintf(f, ", \"embedding_row\": %lld", (long long)s->emb_row);
    put_sampled_frames(f, s);
    fputs(", \"labels\": {", f);
    for (int i = 0; i < k; i++) {
        if (i) fputs(", ", f);
        put_string(f, j->labels[j->order[i]]);
        fprintf(f, ": %.9g", s->scores[j->order[i]]);
    }
    fputs("}}\n", f);
    return check(j);
}

int jsonl_input_end(jsonl *j, const char *video, int input, int64_t shots, int64_t failed)
{
    fputs("{\"video\": ", j->f);
    put_string(j->f, video);
    fprintf(j->f, ", \"input\": %d, \"done\": true, \"shots\": %lld, \"failed\": %lld}\n", input,
            (long long)shots, (long long)failed);
    if (check(j)) return -1;
    if (fsync(fileno(j->f)) && errno != EINVAL) { /* an input's work is on the disk */
        j->error = errno;
        return check(j);
    }
    return 0;
}

const char *jsonl_error(const jsonl *j) { return j->msg; }

int jsonl_close(jsonl *j, char *err, size_t errsize)
{
    if (!j) return 0;
    int rc = 0;
    if (j->f) {
        rc = check(j);
        if (!rc && fsync(fileno(j->f)) && errno != EINVAL) j->error = errno, rc = check(j);
        if (fclose(j->f) && !rc) j->error = errno ? errno : EIO, rc = -1;
        if (rc && err) snprintf(err, errsize, "%s: cannot write: %s", j->path, strerror(j->error));
    }
    for (int i = 0; j->done && i < j->ndone; i++) free(j->done[i]);
    free(j->done), free(j->order), free(j->path);
    free(j);
    return rc;
}
