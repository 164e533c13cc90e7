/* What the apps read: image files, directories of images (recursively, sorted), a stream of
 * PPM frames on stdin ("-"), or a video file decoded by ffmpeg through a pipe. */
#ifndef MCNN_APPS_INPUTS_H
#define MCNN_APPS_INPUTS_H

#include "mcnn.h"

#include <stdio.h>

typedef enum input_kind {
    INPUT_IMAGE,  /* one image file                           */
    INPUT_DIR,    /* the image files under a directory        */
    INPUT_STDIN,  /* PPM frames on standard input             */
    INPUT_VIDEO   /* a video file, frames from ffmpeg         */
} input_kind;

typedef struct input {
    input_kind kind;
    char *path;     /* as given ("-" for stdin)                                     */
    char *name;     /* for outputs: the path, or "stdin"                            */
    char **files;   /* INPUT_IMAGE: the file itself; INPUT_DIR: paths under it, sorted */
    int nfiles;
} input;

/* Images found in directories are recognised by extension (case-insensitive): .jpg .jpeg
 * .png .ppm .pgm .pnm; files named on the command line are decoded whatever their name. */
int input_is_image_name(const char *name);

/* Fill in from a command-line argument ("-", a file or a directory; a video when is_video).
 * Returns 0, or -1 with a message in err ("photos/: no such file or directory"). */
int input_expand(input *in, const char *arg, int is_video, char *err, size_t errsize);
void input_free(input *in);

/* ---- frame streams ------------------------------------------------------------------------- */
/* 1 when an executable of this name is on PATH. */
int program_on_path(const char *name);

typedef struct video_info {
    double fps;      /* frames per second of the stream: 0 when unknown      */
    double duration; /* seconds: 0 when unknown                              */
} video_info;

/* 0 when ffmpeg is on PATH; else -1 with a message saying what to do. */
int video_check_ffmpeg(const char *path, char *err, size_t errsize);

/* Ask ffprobe for a video's frame rate and duration.  Returns 0; -1 with a message when the
 * file is not a video (ffprobe's reason quoted) or has no video stream; VIDEO_NO_RATE with a
 * message when it is one but its rate is unknown, or ffprobe is missing (then --fps helps). */
enum { VIDEO_NO_RATE = -2 };
int video_probe(video_info *info, const char *path, char *err, size_t errsize);

typedef struct frame_stream {
    FILE *f;
    int is_pipe;            /* opened with popen: closed with pclose            */
    char label[512];        /* for messages: "stdin", "movie.mp4 (ffmpeg)"      */
    char errlog[32];        /* ffmpeg's stderr, a temporary file ("" for none)  */
    mcnn_ppm_stream ppm;
} frame_stream;

/* stdin, or ffmpeg decoding the video at fps frames per second (fps > 0) into PPM frames.
 * Returns 0, or -1 with a message (ffmpeg not installed, ...). */
int frame_stream_open(frame_stream *s, const input *in, double fps, char *err, size_t errsize);
/* The next frame: 1 with img filled, 0 at the end, -1 on error (mcnn_last_error()). */
int frame_stream_next(frame_stream *s, mcnn_image *img);
/* Close.  finished: the stream was read to its end; then a failure of ffmpeg is reported
 * (returns -1 with a message).  After an early stop ffmpeg's exit status is ignored. */
int frame_stream_close(frame_stream *s, int finished, char *err, size_t errsize);

#endif
