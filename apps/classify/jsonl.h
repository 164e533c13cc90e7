/* --out-jsonl: tags written one line per shot as each shot finishes, so that a run that dies
 * keeps its work, and `--resume` or `mcnn-classify merge` can pick it up.
 *
 * The file (docs/scale.md has an example):
 *   line 1   the run: {"mcnn_classify_tags": 1, "model": ..., "labels": [every label],
 *            "top": K, "weak_top1": ..., "weak_rest": ..., and the settings that change the
 *            scores (prompts, scale, preprocessing, shot detection, sampling)}
 *   a shot   {"video": V, "input": I, "n": N, "shot": KEY, "id": ID, "start_frame": ...,
 *            "end_frame": ..., "start_time": ..., "end_time": ..., "frames": F,
 *            ["embedding_row": R,] ["sampled_frames": [...],] "labels": {label: score, ...}}
 *            with the max(K, 5) best labels, scores to 9 digits (a float read back exactly);
 *            I is the input's place on the unsharded command line, N the shot's in its input;
 *            with --embeddings, the shot's F frames are rows R.. R + F - 1 of that file
 *   an end   {"video": V, "input": I, "done": true, "shots": S, "failed": E}
 *            after the last shot of an input (E: its frames or images that could not be read)
 * Each line is written whole and flushed; an end line is also synced to the disk.  A line
 * without its newline is the one a killed run was writing: it is dropped, never parsed. */
#ifndef MCNN_APPS_CLASSIFY_JSONL_H
#define MCNN_APPS_CLASSIFY_JSONL_H

#include "../common/output.h"
#include "../common/tag_file.h"

#include <stddef.h>
#include <stdint.h>

/* ---- writing ------------------------------------------------------------------------------- */
typedef struct jsonl jsonl;

/* Open path for a run described by header (one JSON object, no newline) that scores the L
 * labels and reports the top K.  Without resume, a
 * file that exists and is not empty is refused (it may be hours of work).  With resume, an
 * existing file with the same header is kept: the lines of every input that ended without a
 * failure stay, the others (cut off, or failed) are dropped to be redone, and a summary goes to
 * stderr; the file is rewritten atomically before anything is appended.  Returns 0, or -1 with a
 * message. */
int jsonl_open(jsonl **j, const char *path, const char *header, const char *const *labels,
               int L, int top, int resume, char *err, size_t errsize);
/* 1 when the file already holds the input named video, complete (--resume skips it). */
int jsonl_input_done(const jsonl *j, const char *video);
/* A finished shot; an input's end.  Return 0, or -1 after a write error (jsonl_error). */
int jsonl_shot(jsonl *j, const shot_out *s, int input);
int jsonl_input_end(jsonl *j, const char *video, int input, int64_t shots, int64_t failed);
const char *jsonl_error(const jsonl *j);
/* Flush, sync and close; -1 with a message after any write error. */
int jsonl_close(jsonl *j, char *err, size_t errsize);

#endif
