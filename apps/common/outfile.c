/* Output files written atomically; see outfile.h. */
#define _XOPEN_SOURCE 700
#include "outfile.h"

#include "args.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- temporary files removed at exit and on a stopping signal ----------------------------- */
enum { MAX_TEMPS = 16 };
static char *volatile temps[MAX_TEMPS]; /* read by the signal handler */

static void remove_temps(void)
{
    for (int i = 0; i < MAX_TEMPS; i++)
        if (temps[i]) unlink(temps[i]);
}

static void on_signal(int sig)
{
    remove_temps(); /* unlink is async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static int track(char *tmp)
{
    static int installed;
    if (!installed) {
        installed = 1;
        atexit(remove_temps);
        const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
            struct sigaction sa, old;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sigemptyset(&sa.sa_mask);
            if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
                sigaction(sigs[i], &sa, NULL);
        }
    }
    for (int i = 0; i < MAX_TEMPS; i++)
        if (!temps[i]) return temps[i] = tmp, 0;
    return -1;
}

static void untrack(const char *tmp)
{
    for (int i = 0; i < MAX_TEMPS; i++)
        if (temps[i] == tmp) temps[i] = NULL;
}

/* ---- outfile ------------------------------------------------------------------------------- */
static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

/* The file rename must replace: path itself, or the file a symbolic link names.  NULL (with
 * *in_place set) when path exists and is not a regular file: it is written in place. */
static char *find_target(const char *path, int *in_place)
{
    struct stat st;
    *in_place = 0;
    if (lstat(path, &st) != 0) return dup_str(path); /* new file */
    if (S_ISREG(st.st_mode)) return dup_str(path);
    if (S_ISLNK(st.st_mode) && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        char *real = realpath(path, NULL);
        if (real) return real;
    }
    *in_place = 1;
    return NULL;
}

static void outfile_free(outfile *o)
{
    if (o->tmp) untrack(o->tmp);
    free(o->path), free(o->target), free(o->tmp);
    memset(o, 0, sizeof *o);
}

int outfile_open(outfile *o, const char *path, char *err, size_t errsize)
{
    memset(o, 0, sizeof *o);
    if (strcmp(path, "-") == 0) {
        o->f = stdout;
        o->path = dup_str("stdout");
        return o->path ? 0 : fail_with(err, errsize, "out of memory");
    }
    int in_place;
    o->path = dup_str(path);
    o->target = find_target(path, &in_place);
    if (!o->path || (!o->target && !in_place)) return outfile_free(o), fail_with(err, errsize, "out of memory");
    if (in_place) {
        o->f = fopen(path, "w");
        if (!o->f) {
            int e = errno;
            outfile_free(o);
            return fail_with(err, errsize, "%s: cannot write: %s", path, strerror(e));
        }
        return 0;
    }
    size_t n = strlen(o->target) + 32;
    o->tmp = malloc(n);
    if (!o->tmp) return outfile_free(o), fail_with(err, errsize, "out of memory");
    snprintf(o->tmp, n, "%s.tmp.%ld", o->target, (long)getpid());
    o->f = fopen(o->tmp, "w");
    if (!o->f) {
        int e = errno;
        fail_with(err, errsize, "%s: cannot write: %s", path, strerror(e));
        free(o->tmp), o->tmp = NULL;
        outfile_free(o);
        return -1;
    }
    (void)track(o->tmp); /* a full table only means this one is not tidied after a crash */
    return 0;
}

int outfile_check(outfile *o)
{
    if (!o->f) return 0;
    if (!o->error && ferror(o->f)) o->error = errno ? errno : EIO;
    return o->error ? -1 : 0;
}

int outfile_commit(outfile *o, char *err, size_t errsize)
{
    if (!o->f) return 0;
    errno = 0;
    outfile_check(o);
    int e = o->error;
    if (!e && fflush(o->f) != 0) e = errno ? errno : EIO;
    if (o->f == stdout) { /* reported here, so not again by app_close_stdout */
        int rc = e ? fail_with(err, errsize, "%s: write error: %s", o->path, strerror(e)) : 0;
        clearerr(stdout);
        outfile_free(o);
        return rc;
    }
    if (!e && o->tmp && fsync(fileno(o->f)) != 0) e = errno;
    if (fclose(o->f) != 0 && !e) e = errno ? errno : EIO;
    o->f = NULL;
    if (!e && o->tmp && rename(o->tmp, o->target) != 0) e = errno;
    if (e && o->tmp) unlink(o->tmp);
    int rc = e ? fail_with(err, errsize, "%s: write error: %s%s", o->path, strerror(e),
                      o->tmp ? "; the previous file, if any, is unchanged" : "")
               : 0;
    outfile_free(o);
    return rc;
}

void outfile_discard(outfile *o)
{
    if (o->f && o->f != stdout) fclose(o->f);
    if (o->tmp) unlink(o->tmp);
    outfile_free(o);
}

char *outfile_final_path(const char *path, char *err, size_t errsize)
{
    int in_place;
    char *target = find_target(path, &in_place);
    if (in_place) {
        fail_with(err, errsize, "%s: not a regular file (the file is written beside it, then "
                  "renamed over it)", path);
        return NULL;
    }
    outfile o;
    if (!target || outfile_open(&o, target, err, errsize)) return free(target), NULL;
    outfile_discard(&o);
    return target;
}

int app_close_stdout(void)
{
    int e = ferror(stdout) ? EIO : 0; /* an earlier write failed; its errno is gone */
    errno = 0;
    if (fflush(stdout) != 0) e = errno ? errno : EIO;
    errno = 0;
    if (fclose(stdout) != 0 && !e) e = errno ? errno : EIO;
    if (!e) return 0;
    app_error("stdout: write error: %s", strerror(e));
    return -1;
}
