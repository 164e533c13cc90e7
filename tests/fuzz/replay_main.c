/* A main() for the fuzz drivers without libFuzzer: each file named on the command line (a folder
 * stands for its files, in name order) is given to LLVMFuzzerTestOneInput once, in a child
 * process, so that one crash or hang is reported with its file and the others still run.
 * With no argument it replays the driver's default corpus:
 *   $MCNN_BUILD/fuzz-seeds/<driver>/     made by tests/fuzz/make_seeds.sh (make fuzz-seeds)
 *   tests/fuzz/regressions/<driver>/     inputs that once crashed or hung, committed
 * An input passes when its child exits 0 within FUZZ_TIMEOUT seconds (default 30).  Each
 * argument (or default folder) counts as one test, passed when all its inputs pass; the last
 * line is "N passed, N failed", as for every test binary (tests/run.sh sums them). */
#define _DEFAULT_SOURCE /* scandir, alphasort */
#include "fuzz.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FUZZ_NAME
#error "build with -DFUZZ_NAME=\"<driver>\""
#endif

static int inputs, inputs_failed; /* in the current argument */
static int passed, failed;         /* arguments */

/* The whole file in a buffer of exactly its size, so reading past the end is an ASan error. */
static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            uint8_t *p = realloc(buf, cap = cap ? 2 * cap : 4096);
            if (!p) break;
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    uint8_t *exact = malloc(n ? n : 1);
    if (exact && n) memcpy(exact, buf, n);
    free(buf);
    *size = n;
    return exact;
}

static int timeout_seconds(void)
{
    const char *v = getenv("FUZZ_TIMEOUT");
    int t = v ? atoi(v) : 0;
    return t > 0 ? t : 30;
}

static void run_one(const char *path)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        alarm((unsigned)timeout_seconds());
        size_t size;
        uint8_t *data = read_all(path, &size);
        if (!data) {
            fprintf(stderr, "%s: cannot read\n", path);
            exit(2);
        }
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        exit(0); /* exit, not _exit: LeakSanitizer checks at exit */
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        fprintf(stderr, "  %s: cannot run (fork/wait)\n", path);
        inputs++, inputs_failed++;
        return;
    }
    inputs++;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    inputs_failed++;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        fprintf(stderr, "  %s: no result after %d s (a hang?)\n", path, timeout_seconds());
    else if (WIFSIGNALED(status))
        fprintf(stderr, "  %s: killed by signal %d\n", path, WTERMSIG(status));
    else
        fprintf(stderr, "  %s: exit status %d\n", path, WEXITSTATUS(status));
}

static int skip_name(const struct dirent *e)
{
    return e->d_name[0] != '.'; /* hidden files and . / .. */
}

/* A file, or every file of a folder (not recursive).  missing_ok: a folder that does not exist
 * is not an error (a driver without regressions has no folder). */
static void run_path(const char *path, int missing_ok)
{
    inputs = inputs_failed = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (missing_ok) return;
        fprintf(stderr, "  %s: not found\n", path);
        inputs_failed++;
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        run_one(path);
        return;
    }
    struct dirent **list;
    int n = scandir(path, &list, skip_name, alphasort);
    for (int i = 0; i < n; i++) {
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", path, list[i]->d_name);
        if (stat(file, &sb) == 0 && S_ISREG(sb.st_mode)) run_one(file);
        free(list[i]);
    }
    free(list);
}

/* One test: a file or folder, with its count of inputs. */
static void test_path(const char *path, int missing_ok)
{
    run_path(path, missing_ok);
    if (inputs_failed) {
        failed++;
        fprintf(stderr, "FAIL %s: %d of %d inputs failed\n", path, inputs_failed, inputs);
    } else if (inputs == 0 && !missing_ok) {
        failed++;
        fprintf(stderr, "FAIL %s: no inputs\n", path);
    } else if (inputs) {
        passed++;
        fprintf(stderr, "ok   %s: %d inputs\n", path, inputs);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++) test_path(argv[i], 0);
    } else {
        const char *build = getenv("MCNN_BUILD");
        char seeds[4096];
        snprintf(seeds, sizeof seeds, "%s/fuzz-seeds/%s", build ? build : "build", FUZZ_NAME);
        test_path(seeds, 0); /* no seeds: make fuzz-seeds was not run, and that is a failure */
        test_path("tests/fuzz/regressions/" FUZZ_NAME, 1);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
