/* Helpers several tests share, written with plain libc so that they never depend on the code
 * under test: read a whole file, run a shell command with its output captured, and look at
 * what it printed.  Include after mcnn_test.h (which gives TEST_ASSERT). */
#ifndef MCNN_TEST_UTIL_H
#define MCNN_TEST_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* The whole of PATH, read with stdio (malloc'd; NULL and a failed assertion when unreadable). */
static inline unsigned char *test_read_file(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        TEST_ASSERT(0, "cannot open %s", path);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    unsigned char *p = malloc(cap);
    for (;;) {
        if (len == cap) p = realloc(p, cap *= 2);
        size_t got = fread(p + len, 1, cap - len, f);
        if (!got) break;
        len += got;
    }
    fclose(f);
    *n = len;
    return p;
}

/* DIR/NAME in one of eight rotating buffers (so a call may use several at once). */
static inline const char *test_path_in(const char *dir, const char *name)
{
    static char buf[8][4200];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* system(CMD)'s exit status, or 128 when the command did not exit normally. */
static inline int test_system(const char *cmd)
{
    const int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* A tensor of a safetensors file as floats (malloc'd), failing the test when unreadable. */
static inline float *test_read_tensor(const char *path, const char *name, size_t *n)
{
    mcnn_safetensors *st;
    if (mcnn_safetensors_open(&st, path) != MCNN_OK) {
        TEST_ASSERT(0, "%s", mcnn_last_error());
        return NULL;
    }
    float *v = test_golden(st, name, n);
    mcnn_safetensors_close(st);
    return v;
}

/* Parse a JSON file an app wrote into doc; 0 (and a failed assertion) when it is missing or
 * not valid JSON.  Needs mcnn/json.h (mcnn.h). */
static inline int test_parse_json_file(mcnn_json_doc *doc, const char *path)
{
    size_t n;
    unsigned char *text = test_read_file(path, &n);
    if (!text) return 0;
    mcnn_status s = mcnn_json_parse(doc, (const char *)text, n);
    free(text);
    TEST_ASSERT(s == MCNN_OK, "%s: %s", path, mcnn_last_error());
    return s == MCNN_OK;
}

/* Run "cd DIR && COMMAND" with stdout and stderr into OUT; the exit status, or 128 + the
 * signal when the command was killed. */
static inline int test_vshell(const char *dir, const char *out, const char *fmt, va_list ap)
{
    char line[16384], cmd[20480];
    vsnprintf(line, sizeof line, fmt, ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s >'%s' 2>&1", dir, line, out);
    const int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static inline int test_shell_in(const char *dir, const char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int rc = test_vshell(dir, out, fmt, ap);
    va_end(ap);
    return rc;
}

/* What the last command printed into OUT (a static buffer, the first 64 KiB). */
static inline const char *test_shell_output(const char *out)
{
    static char buf[65536];
    FILE *f = fopen(out, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    return buf;
}

#endif
