/* Progress on stderr for long runs: frames done, frames per second, shots, and an estimate of
 * the time left when the total is known.  One line rewritten in place (\r), at most twice a
 * second; silent unless enabled (the apps enable it when stderr is a terminal or on
 * --progress, so tests and pipelines stay quiet). */
#ifndef MCNN_APPS_PROGRESS_H
#define MCNN_APPS_PROGRESS_H

#include <stdint.h>

typedef struct progress {
    int enabled;
    int64_t total;       /* frames expected, 0 when unknown */
    double start, last;  /* seconds                          */
    int shown;           /* a line is on screen               */
    int tty;             /* stderr is a terminal: one line rewritten with \r; else a
                            line every 5 s (a log file)                           */
} progress;

int progress_stderr_is_tty(void);
void progress_init(progress *p, int enabled, int64_t total_frames);
void progress_set_total(progress *p, int64_t total_frames);
void progress_update(progress *p, int64_t frames, int64_t shots);
/* The final line, ended with a newline (only when something was shown). */
void progress_done(progress *p, int64_t frames, int64_t shots);
/* Before printing anything else to stderr: clear the progress line. */
void progress_clear(progress *p);

#endif
