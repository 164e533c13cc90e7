/* Progress during the epochs: one callback per optimizer step (log row, progress line, stop
 * request), and Ctrl-C / SIGTERM turned into a stop at the next step. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

volatile sig_atomic_t interrupted;

/* Ctrl-C and SIGTERM (kill, systemd, a batch scheduler): stop at the next step boundary with
 * a checkpoint.  A second signal of the same kind ends the process at once. */
static void on_stop_signal(int sig)
{
    interrupted = 1;
    signal(sig, SIG_DFL);
}

void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void fmt_time(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

int on_step(void *ctx, const mcnn_train_progress *p)
{
    run *r = ctx;
    const double now = mcnn_seconds(), elapsed = now - r->start;
    const double rate = (double)(p->step - r->start_step) * p->images / (elapsed > 0 ? elapsed : 1);
    if (r->log) {
        fprintf(r->log, "step,%d,%lld,%.6g,%.6g,%.6g,%.1f,%.1f,,,,,,,,\n", p->epoch + 1,
                (long long)p->step, p->loss, p->lr, p->grad_norm, rate, elapsed);
        if (p->epoch_step == p->epoch_steps) fflush(r->log);
    }
    if (r->show && (now - r->last_print >= (r->tty ? 0.5 : 10.0) || p->step == p->total_steps)) {
        char eta[32];
        const double left = (double)(p->total_steps - p->step) * p->images;
        fmt_time(eta, sizeof eta, rate > 0 ? left / rate : 0);
        fprintf(stderr, "%sepoch %d/%d  step %lld/%lld  loss %.4f  lr %.3g  %.0f img/s  ETA %s%s",
                r->tty ? "\r" : "", p->epoch + 1, p->epochs, (long long)p->step,
                (long long)p->total_steps, p->loss, p->lr, rate, eta, r->tty ? "\033[K" : "\n");
        r->last_print = now;
    }
    if (r->stop_after && p->step >= r->stop_after) interrupted = 1;
    if (dist_size() > 1) interrupted = dist_any(interrupted); /* every rank stops at one step */
    return interrupted != 0;
}
