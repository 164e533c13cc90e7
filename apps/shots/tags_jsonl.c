/* Tags from mcnn-classify's --out-jsonl files (the scale-out runs' shards) instead of the merged
 * JSON: the same shots, read straight from each shard.  A shard must be whole: every video in it
 * ended by its end line, and no line cut off.  A shard still being written, or killed, would
 * otherwise lose shots without a word, so it is refused with what to do. */
#define _XOPEN_SOURCE 700
#include "shots.h"

#include "../common/args.h"
#include "../common/tag_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tags_is_jsonl(const unsigned char *text, size_t len)
{
    static const char magic[] = "{\"mcnn_classify_tags\"";
    return len >= sizeof magic - 1 && memcmp(text, magic, sizeof magic - 1) == 0;
}

/* 1 when video has its end line in f (and so every one of its shots is there). */
static int video_ended(const tag_file *f, const char *video, int64_t *failed)
{
    for (int64_t i = 0; i < f->nrec; i++)
        if (f->rec[i].done && strcmp(f->rec[i].video, video) == 0) {
            *failed = f->rec[i].failed;
            return 1;
        }
    return 0;
}

static int check_whole(const tag_file *f, char *err, size_t errsize)
{
    if (f->truncated)
        return fail_with(err, errsize, "%s: its last line is cut off (the run was killed): finish "
                         "it with mcnn-classify --resume first", f->path);
    for (int64_t i = 0; i < f->nrec; i++) {
        int64_t failed = 0;
        if (f->rec[i].done) continue;
        if (!video_ended(f, f->rec[i].video, &failed))
            return fail_with(err, errsize, "%s: video '%s' has no end line (its run was cut off "
                             "or is still running): finish it with mcnn-classify --resume "
                             "first", f->path, f->rec[i].video);
    }
    return 0;
}

static int by_key(const void *a, const void *b)
{
    return strcmp((*(const tag_shot *const *)a)->key, (*(const tag_shot *const *)b)->key);
}

/* A shot written twice (two runs appended to one file): refused, as merge refuses it. */
static int check_unique(const tag_shot *s, int n, const char *path, char *err, size_t errsize)
{
    const tag_shot **by = shots_xcalloc((size_t)n + 1, sizeof *by);
    for (int i = 0; i < n; i++) by[i] = &s[i];
    qsort(by, (size_t)n, sizeof *by, by_key);
    int rc = 0;
    for (int i = 1; i < n && !rc; i++)
        if (strcmp(by[i - 1]->key, by[i]->key) == 0)
            rc = fail_with(err, errsize, "%s: shot '%s' of '%s' is there twice", path,
                           by[i]->shot, by[i]->video);
    free(by);
    return rc;
}

int tags_read_jsonl(tags *t, const char *path, char *err, size_t errsize)
{
    tag_file *f = shots_xcalloc(1, sizeof *f);
    if (tag_file_read(f, path, err, errsize)) return free(f), -1;
    /* kept alive with the tags: the shots' strings point into it */
    int n = 0;
    while (t->jsonl && t->jsonl[n]) n++;
    void **kept = realloc(t->jsonl, (size_t)(n + 2) * sizeof *kept);
    if (!kept) app_error("out of memory"), exit(1);
    kept[n] = f, kept[n + 1] = NULL;
    t->jsonl = kept;
    if (check_whole(f, err, errsize)) return -1;
    const int first_new = t->nshots;
    t->shots = realloc(t->shots, (size_t)(t->nshots + f->nrec) * sizeof *t->shots);
    if (!t->shots && f->nrec) app_error("out of memory"), exit(1);
    for (int64_t i = 0; i < f->nrec; i++) {
        const tag_record *r = &f->rec[i];
        if (r->done) {
            if (r->failed > 0)
                fprintf(stderr, "mcnn-shots: warning: %s: %lld frames or images of '%s' could "
                        "not be read when it was tagged\n", path, (long long)r->failed, r->video);
            continue;
        }
        if (tags_video_seen(t, first_new, r->video))
            return fail_with(err, errsize, "%s: video '%s' is also in an earlier tags file", path,
                             r->video);
        tag_shot *ts = &t->shots[t->nshots++];
        *ts = (tag_shot){.video = r->video, .shot = r->key, .key = shot_key(r->video, r->key),
                         .start_time = r->start_time, .end_time = r->end_time,
                         .start_frame = r->start_frame, .end_frame = r->end_frame,
                         .nlabels = r->ntop};
        ts->labels = shots_xcalloc((size_t)r->ntop + 1, sizeof *ts->labels);
        for (int k = 0; k < r->ntop; k++)
            ts->labels[k] = (tag_label){f->labels[r->label[k]], r->score[k]};
        tags_rank(ts->labels, ts->nlabels);
    }
    return check_unique(t->shots + first_new, t->nshots - first_new, path, err, errsize);
}

void tags_free_jsonl(tags *t)
{
    for (int i = 0; t->jsonl && t->jsonl[i]; i++) {
        tag_file_free(t->jsonl[i]);
        free(t->jsonl[i]);
    }
    free(t->jsonl);
}
