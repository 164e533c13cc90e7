/* The apps are clients of the public API only (issue 13): every mcnn_* symbol their objects
 * use is exported by libmcnn.so, and the same apps linked against libmcnn.so (the Makefile's
 * shared-apps variant, rpath $ORIGIN/..) run.  Uses binutils' nm and readelf. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *build;

typedef struct names {
    char **v;
    int n, cap;
} names;

static void names_add(names *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], name)) return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->v = realloc(s->v, (size_t)s->cap * sizeof *s->v);
    }
    s->v[s->n++] = strdup(name);
}

static int names_has(const names *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], name)) return 1;
    return 0;
}

static void names_free(names *s)
{
    for (int i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
}

/* The mcnn_* names in the last column of `cmd`'s output lines; -1 when cmd failed. */
static int collect(names *s, const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[1024];
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        const char *name = strrchr(line, ' ');
        name = name ? name + 1 : line;
        if (!strncmp(name, "mcnn_", 5)) names_add(s, name);
    }
    return pclose(p) == 0 ? 0 : -1;
}

static void test_app_objects_use_only_exported_symbols(void)
{
    names exported = {0}, used = {0}, own = {0};
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "nm -D --defined-only %s/libmcnn.so", build);
    TEST_ASSERT(collect(&exported, cmd) == 0 && exported.n > 100, "%s: %d exported mcnn_* symbols",
                cmd, exported.n);
    const char *objs = "obj/apps/*.o obj/apps/*/*.o"; /* every app and its parts */
    snprintf(cmd, sizeof cmd, "cd %s && nm -u %s", build, objs);
    TEST_ASSERT(collect(&used, cmd) == 0, "%s failed", cmd);
    snprintf(cmd, sizeof cmd, "cd %s && nm --defined-only %s", build, objs);
    TEST_ASSERT(collect(&own, cmd) == 0, "%s failed", cmd);
    /* the test sees what it must: the app side of JSON escaping and the models */
    TEST_ASSERT(names_has(&used, "mcnn_json_escape") && names_has(&used, "mcnn_utf8_valid") &&
                    names_has(&used, "mcnn_classifier_forward"),
                "the app objects' undefined symbols miss known ones (%d found)", used.n);
    int missing = 0;
    for (int i = 0; i < used.n; i++)
        if (!names_has(&exported, used.v[i]) && !names_has(&own, used.v[i])) {
            TEST_ASSERT(0, "the apps use %s, which libmcnn.so does not export", used.v[i]);
            missing++;
        }
    printf("  the apps use %d mcnn_* symbols, %d not exported\n", used.n, missing);
    names_free(&exported), names_free(&used), names_free(&own);
}

static int run(const char *cmd)
{
    const int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_shared_apps_run(void)
{
    const char *apps[] = {"mcnn-classify", "mcnn-train", "mcnn-convert"};
    char cmd[1024];
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "readelf -d %s/shared-apps/%s | grep -q 'NEEDED.*libmcnn\\.so'",
                 build, apps[i]);
        TEST_ASSERT(run(cmd) == 0, "%s/shared-apps/%s is not linked against libmcnn.so "
                    "(make shared-apps)", build, apps[i]);
        snprintf(cmd, sizeof cmd, "env -u LD_LIBRARY_PATH %s/shared-apps/%s --help >/dev/null 2>&1",
                 build, apps[i]);
        TEST_ASSERT(run(cmd) == 0, "%s: exit status is not 0", cmd);
    }
}

int main(void)
{
    build = getenv("MCNN_BUILD") ? getenv("MCNN_BUILD") : "build";
    TEST_RUN(test_app_objects_use_only_exported_symbols);
    TEST_RUN(test_shared_apps_run);
    return test_summary();
}
