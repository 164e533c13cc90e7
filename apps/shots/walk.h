/* Walking the tagged shots' frames: see walk.c. */
#ifndef MCNN_APPS_SHOTS_WALK_H
#define MCNN_APPS_SHOTS_WALK_H

#include "shots.h"

typedef struct walk_config {
    double fps;              /* frames sampled per second                             */
    int max_frames;          /* per shot, the first ones                              */
    const char *videos_dir;  /* relative video names are found here (NULL: as given) */
    int stop_on_error;
} walk_config;

/* Called with frame index n >= 0 and the frame for each sampled frame of shot s; then, once
 * per shot of the video after its last frame, with n = -(frames taken) - 1 and img = NULL.
 * Returns 0, or -1 with a message in err (the video is abandoned). */
typedef int (*walk_fn)(void *ctx, const tag_shot *s, int n, const mcnn_image *img, char *err,
                       size_t errsize);
/* 1: leave this video out (already done). */
typedef int (*walk_skip_fn)(void *ctx, const char *video);

/* Every video of t in order; a video that fails is named and counted in *failed, and the walk
 * goes on (or returns -1 with stop_on_error). */
int walk_tags(const tags *t, const walk_config *c, walk_skip_fn skip, walk_fn fn, void *ctx,
              int *failed);

#endif
