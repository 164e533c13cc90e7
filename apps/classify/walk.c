/* The input walk: image files and folders (each image a shot, or a folder one shot), and frame
 * streams (stdin, --video) cut into shots by the shot detector, which sees every frame; with
 * --every / --sample-fps only some frames of each shot are encoded. */
#define _XOPEN_SOURCE 700
#include "classify.h"

#include "../common/check.h"
#include "../common/escape.h"

#include "mcnn/shots.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sampling(const options *o) { return o->every > 0 || o->sample_fps > 0; }

/* Frame k of a shot (k = 0 its first) is encoded when: --every N: k is a multiple of N;
 * --sample-fps R: k is the first frame at or after a multiple of 1/R seconds from the shot's
 * start (the frames are 1/fps apart).  Frame 0 always is, so no shot goes without a frame. */
static int sample_take(const options *o, int64_t k, double fps)
{
    if (o->every > 0) return k % o->every == 0;
    if (o->sample_fps <= 0 || k == 0) return 1;
    const double per_frame = o->sample_fps / fps; /* samples per frame; a tiny slack keeps an
                                                     exact multiple (24 fps at 1 fps) exact */
    return floor((double)k * per_frame + 1e-9) > floor((double)(k - 1) * per_frame + 1e-9);
}

void sampling_describe(const options *o, char *out, size_t size)
{
    if (o->every > 0) snprintf(out, size, "every %d frames of a shot, from its first", o->every);
    else if (o->sample_fps > 0)
        snprintf(out, size, "%g frames per second of a shot, from its first", o->sample_fps);
    else snprintf(out, size, "every frame");
}

/* An image, or a folder of unrelated images: frame numbers and times mean nothing for its shots
 * (a --shot-per-dir folder or an --fps rate makes its images frames of a sequence). */
int input_is_still(const options *o, const input *in)
{
    return in->kind == INPUT_IMAGE || (in->kind == INPUT_DIR && !o->shot_per_dir && !o->fps_set);
}

static void run_files(run *r, const input *in)
{
    const int still = input_is_still(r->o, in);
    const int one_shot = in->kind == INPUT_DIR && r->o->shot_per_dir;
    const double fps = r->o->fps_set ? r->o->fps : 0;
    const size_t plen = strlen(in->path);
    int64_t frame = 0;
    if (one_shot) shot_begin(r, in->name, "0", in->name, 0, 0.0);
    for (int i = 0; i < in->nfiles; i++) {
        const char *file = in->files[i];
        /* the key: the file's path inside the folder, or "0" for a file */
        const char *key = "0";
        if (in->kind == INPUT_DIR) {
            key = file + plen;
            while (*key == '/') key++;
        }
        if (!one_shot && in->kind == INPUT_DIR && !shard_takes_image(r->shard, in->name, key)) {
            frame++; /* another shard's image: the frame numbers stay the whole folder's */
            continue;
        }
        mcnn_image img;
        if (mcnn_image_load(&img, file) != MCNN_OK) {
            failure(r, "%s", mcnn_last_error());
            continue;
        }
        if (!one_shot) {
            shot_begin(r, in->name, key, file, frame, fps > 0 ? frame / fps : 0.0);
            r->shots[r->nshots - 1].still = still;
            r->shots[r->nshots - 1].ordinal = i;
        }
        add_frame(r, &img, frame, file);
        if (!one_shot) shot_end(r, frame, fps > 0 ? (frame + 1) / fps : 0.0);
        frame++;
    }
    if (one_shot) shot_end(r, frame > 0 ? frame - 1 : 0, fps > 0 && frame ? frame / fps : 0.0);
    if (in->nfiles == 0) failure(r, "%s: no image files (.jpg .jpeg .png .ppm .pgm .pnm)", in->path);
}

static void run_stream(run *r, const input *in)
{
    char err[1024];
    double fps = r->o->fps_set ? r->o->fps : 24.0;
    int64_t expected = 0;
    if (in->kind == INPUT_VIDEO && video_check_ffmpeg(in->path, err, sizeof err))
        return failure(r, "%s", err);
    if (in->kind == INPUT_VIDEO) { /* the video's own rate, unless --fps; its duration */
        video_info vi;
        const int probe = video_probe(&vi, in->path, err, sizeof err);
        if (probe && !(probe == VIDEO_NO_RATE && r->o->fps_set)) return failure(r, "%s", err);
        if (!r->o->fps_set) fps = vi.fps;
        expected = (int64_t)(vi.duration * fps);
    }
    frame_stream fs;
    if (frame_stream_open(&fs, in, fps, err, sizeof err)) return failure(r, "%s", err);
    progress_set_total(&r->prog, expected ? r->frames_done + expected : 0);
    mcnn_shot_detector det;
    CHECK(mcnn_shot_detector_init(&det, r->o->shot_threshold, r->o->min_shot_len));
    int64_t f = 0, shot = 0, shot_start = 0;
    int got, finished = 1;
    char key[32], id[PATH_MAX + 64];
    mcnn_image img;
    while ((got = frame_stream_next(&fs, &img)) == 1) {
        int cut;
        CHECK(mcnn_shot_detector_push(&det, &img, &cut));
        if (f == 0 || cut) {
            if (cut) shot_end(r, f - 1, f / fps);
            snprintf(key, sizeof key, "%lld", (long long)shot++);
            snprintf(id, sizeof id, "%s#%s", in->name, key);
            shot_begin(r, in->name, key, id, f, f / fps);
            r->shots[r->nshots - 1].ordinal = shot - 1;
            shot_start = f;
        }
        if (sample_take(r->o, f - shot_start, fps)) {
            if (sampling(r->o)) shot_note_sampled(r, f);
            add_frame(r, &img, f, in->name);
        } else {
            mcnn_image_free(&img); /* seen by the shot detector only */
        }
        f++;
    }
    if (got < 0) {
        failure(r, "%s", mcnn_last_error());
        finished = 0;
    }
    if (f > 0) shot_end(r, f - 1, f / fps);
    mcnn_shot_detector_free(&det);
    if (frame_stream_close(&fs, finished, err, sizeof err)) failure(r, "%s", err);
    else if (f == 0 && got == 0) failure(r, "%s: no frames", fs.label);
}

/* The table's first column as wide as the widest shot name (up to 60 display columns; longer
 * names lose their start to "…"), and the frame and time columns only when some input has
 * frames in sequence. */
void table_layout(outputs *out, const options *o, const input *ins, int nin)
{
    int widest = 4, timed = 0;
    for (int i = 0; i < nin; i++) {
        const input *in = &ins[i];
        int w = 0;
        timed |= !input_is_still(o, in);
        if (in->kind == INPUT_IMAGE || (in->kind == INPUT_DIR && !o->shot_per_dir)) {
            for (int k = 0; k < in->nfiles; k++) {
                free(display_text(in->files[k], &w));
                if (w > widest) widest = w;
            }
            continue;
        }
        free(display_text(in->name, &w)); /* "name" (a folder), "name#12" (a stream's shot) */
        w += in->kind == INPUT_DIR ? 0 : 7;
        if (w > widest) widest = w;
    }
    out->id_width = widest < 60 ? widest : 60;
    out->timed = timed;
}

void run_input(run *r, const input *in)
{
    if (in->kind == INPUT_IMAGE || in->kind == INPUT_DIR) run_files(r, in);
    else run_stream(r, in);
    flush(r); /* names in the batch point into this input */
}
