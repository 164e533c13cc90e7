/* Progress line on stderr; see progress.h. */
#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include "mcnn.h"

#include <stdio.h>
#include <unistd.h>

int progress_stderr_is_tty(void) { return isatty(STDERR_FILENO); }

void progress_init(progress *p, int enabled, int64_t total_frames)
{
    p->enabled = enabled;
    p->total = total_frames;
    p->start = p->last = mcnn_seconds();
    p->shown = 0;
    p->tty = progress_stderr_is_tty();
}

void progress_set_total(progress *p, int64_t total_frames) { p->total = total_frames; }

static void show(progress *p, int64_t frames, int64_t shots, double now)
{
    const double dt = now - p->start, rate = dt > 0 ? (double)frames / dt : 0.0;
    fprintf(stderr, "%s%lld frames  %.1f frames/s  %lld shots", p->tty ? "\r" : "",
            (long long)frames, rate, (long long)shots);
    if (p->total > 0 && rate > 0 && frames <= p->total) {
        long eta = (long)((double)(p->total - frames) / rate + 0.5);
        fprintf(stderr, "  %lld%%  ETA %ld:%02ld:%02ld", (long long)(100 * frames / p->total),
                eta / 3600, eta / 60 % 60, eta % 60);
    }
    fputs(p->tty ? "   " : "\n", stderr); /* a terminal: wipe a longer line's tail */
    fflush(stderr);
    p->shown = p->tty;
    p->last = now;
}

void progress_update(progress *p, int64_t frames, int64_t shots)
{
    if (!p->enabled) return;
    double now = mcnn_seconds();
    if (now - p->last >= (p->tty ? 0.5 : 5.0)) show(p, frames, shots, now);
}

void progress_done(progress *p, int64_t frames, int64_t shots)
{
    if (!p->enabled) return;
    show(p, frames, shots, mcnn_seconds());
    if (p->tty) fputc('\n', stderr);
    p->shown = 0;
}

void progress_clear(progress *p)
{
    if (!p->enabled || !p->shown) return;
    fputs("\r\033[K", stderr); /* carriage return, erase to the end of the line */
    p->shown = 0;
}
