/* The sampled frames of every tagged shot: each video decoded once by ffmpeg at the rate asked
 * for, frame i taken at the centre of its interval, t = (i + 0.5) / fps, and given to the shot
 * whose [start_time, end_time) holds t, up to max_frames per shot (the first ones, as
 * MovieCLIP's feature dataset keeps the first 20 frames at 4 fps).  The centre keeps a
 * sampling at the tagging's own rate on the tagging's frames, whatever the rounding of the
 * times in the JSON (3 decimals). */
#define _XOPEN_SOURCE 700
#include "walk.h"

#include "../common/args.h"
#include "../common/inputs.h"

#include <stdlib.h>
#include <string.h>

/* The shots of the video starting at t->shots[first]: [first, end). */
static int video_end(const tags *t, int first)
{
    int end = first;
    while (end < t->nshots && strcmp(t->shots[end].video, t->shots[first].video) == 0) end++;
    return end;
}

static int walk_video(const tags *t, int first, int end, const walk_config *c, walk_fn fn,
                      void *ctx, char *err, size_t errsize)
{
    const char *video = t->shots[first].video;
    char path[4096];
    if (c->videos_dir && video[0] != '/') snprintf(path, sizeof path, "%s/%s", c->videos_dir, video);
    else snprintf(path, sizeof path, "%s", video);
    input in = {.kind = INPUT_VIDEO, .path = path, .name = path};
    frame_stream fs;
    if (frame_stream_open(&fs, &in, c->fps, err, errsize)) return -1;
    int *taken = shots_xcalloc((size_t)(end - first), sizeof *taken);
    int s = first, got, rc = 0, finished = 1;
    mcnn_image img;
    for (int64_t i = 0; (got = frame_stream_next(&fs, &img)) == 1; i++) {
        const double tc = (i + 0.5) / c->fps;
        while (s < end && tc >= t->shots[s].end_time) s++;
        int use = s < end && tc >= t->shots[s].start_time && taken[s - first] < c->max_frames;
        if (use) {
            rc = fn(ctx, &t->shots[s], taken[s - first], &img, err, errsize);
            taken[s - first]++;
        }
        mcnn_image_free(&img);
        if (rc) break;
        if (s >= end) { /* past the last shot: the rest of the video is not needed */
            finished = 0;
            break;
        }
    }
    if (rc == 0 && got < 0) rc = fail_with(err, errsize, "%s", mcnn_last_error()), finished = 0;
    char cerr[1024];
    if (frame_stream_close(&fs, finished && rc == 0, cerr, sizeof cerr) && rc == 0)
        rc = fail_with(err, errsize, "%s", cerr);
    for (int k = first; rc == 0 && k < end; k++)
        rc = fn(ctx, &t->shots[k], -taken[k - first] - 1, NULL, err, errsize); /* shot done */
    free(taken);
    return rc;
}

int walk_tags(const tags *t, const walk_config *c, walk_skip_fn skip, walk_fn fn, void *ctx,
              int *failed)
{
    *failed = 0;
    char err[2048];
    for (int first = 0; first < t->nshots;) {
        const int end = video_end(t, first);
        if (!skip || !skip(ctx, t->shots[first].video)) {
            if (walk_video(t, first, end, c, fn, ctx, err, sizeof err)) {
                app_error("%s", err);
                (*failed)++;
                if (c->stop_on_error) return -1;
            }
        }
        first = end;
    }
    return 0;
}
