/* Small helpers shared by the mcnn-shots subcommands; see shots.h. */
#define _XOPEN_SOURCE 700
#include "shots.h"

#include "../common/args.h"
#include "../common/outfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void *shots_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) app_error("out of memory"), exit(1);
    return p;
}

void *shots_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) app_error("out of memory"), exit(1);
    return p;
}

char *shots_strdup(const char *s)
{
    const size_t n = strlen(s) + 1;
    return memcpy(shots_xmalloc(n), s, n);
}

/* mkdir -p */
int shots_mkdirs(const char *dir, char *err, size_t errsize)
{
    char *p = shots_strdup(dir);
    for (char *s = p + 1;; s++) {
        const char c = *s;
        if (c != '/' && c != '\0') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            const int e = errno;
            free(p);
            return fail_with(err, errsize, "%s: cannot create: %s", dir, strerror(e));
        }
        if (c == '\0') break;
        *s = c;
    }
    struct stat st;
    const int ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    return ok ? 0 : fail_with(err, errsize, "%s: not a folder", dir);
}

int shots_write_text(const char *path, const char *text, size_t len, char *err, size_t errsize)
{
    outfile o;
    if (outfile_open(&o, path, err, errsize)) return -1;
    fwrite(text, 1, len, o.f);
    outfile_check(&o);
    return outfile_commit(&o, err, errsize);
}

int shots_read_labels(char ***names, int *K, const char *path)
{
    if (mcnn_read_label_list(names, K, path) != MCNN_OK) {
        app_error("%s", mcnn_last_error());
        return -1;
    }
    return 0;
}

int shots_args(const void *specs_, int argc, char **argv, const char *usage)
{
    const arg_spec *specs = specs_;
    arg_strings pos = {0};
    const int r = args_parse(specs, argc, argv, &pos);
    const int extra = pos.count;
    args_strings_free(&pos);
    if (r == ARGS_HELP) {
        args_help(stdout, usage, specs, NULL);
        exit(app_close_stdout() ? 1 : 0);
    }
    if (r == ARGS_ERROR) return -1;
    if (extra) return app_error("%s: unexpected argument (try --help)", argv[0]), -1;
    return 0;
}
