/* Expanding command-line inputs into images and frame streams; see inputs.h. */
#define _XOPEN_SOURCE 700
#include "inputs.h"

#include "args.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { MAX_DEPTH = 64 }; /* directory recursion (links back are caught before: seen_dirs) */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int input_is_image_name(const char *name)
{
    static const char *ext[] = {".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pnm"};
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (strcasecmp(dot, ext[i]) == 0) return 1;
    return 0;
}

typedef struct list {
    char **v;
    int n, cap;
} list;

static int list_add(list *l, char *s)
{
    if (!s) return -1;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return free(s), -1;
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

/* The folders searched so far, by device and inode: a symbolic link back to a folder (a loop,
 * "self -> .") or a second link to one is searched once. */
typedef struct seen_dirs {
    struct { dev_t dev; ino_t ino; } *v;
    int n, cap;
} seen_dirs;

/* 1 when dir was searched before; else it is recorded (-1: out of memory). */
static int seen_before(seen_dirs *s, const struct stat *st)
{
    for (int i = 0; i < s->n; i++)
        if (s->v[i].dev == st->st_dev && s->v[i].ino == st->st_ino) return 1;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        void *v = realloc(s->v, (size_t)cap * sizeof *s->v);
        if (!v) return -1;
        s->v = v, s->cap = cap;
    }
    s->v[s->n].dev = st->st_dev, s->v[s->n].ino = st->st_ino;
    s->n++;
    return 0;
}

/* Every image file under dir; hidden entries (".name") are skipped. */
static int scan(list *out, const char *dir, int depth, seen_dirs *seen, char *err, size_t errsize)
{
    if (depth > MAX_DEPTH)
        return fail_with(err, errsize, "%s: directories nested deeper than %d", dir, MAX_DEPTH);
    struct stat self;
    int before = stat(dir, &self) == 0 ? seen_before(seen, &self) : 0;
    if (before < 0) return fail_with(err, errsize, "out of memory");
    if (before) {
        app_error("note: %s: a folder already searched (a symbolic link back to it), skipped", dir);
        return 0;
    }
    DIR *d = opendir(dir);
    if (!d) return fail_with(err, errsize, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(n);
        if (!path) {
            rc = fail_with(err, errsize, "out of memory");
            break;
        }
        snprintf(path, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        struct stat st;
        if (stat(path, &st) != 0) { /* a dangling link: nothing to read */
            free(path);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            rc = scan(out, path, depth + 1, seen, err, errsize);
            free(path);
        } else if (S_ISREG(st.st_mode) && input_is_image_name(e->d_name)) {
            if (list_add(out, path)) rc = fail_with(err, errsize, "out of memory");
        } else {
            free(path);
        }
    }
    closedir(d);
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int input_expand(input *in, const char *arg, int is_video, char *err, size_t errsize)
{
    memset(in, 0, sizeof *in);
    in->path = dup_str(arg);
    in->name = dup_str(strcmp(arg, "-") == 0 ? "stdin" : arg);
    if (!in->path || !in->name) return fail_with(err, errsize, "out of memory");
    if (strcmp(arg, "-") == 0 && !is_video) {
        in->kind = INPUT_STDIN;
        return 0;
    }
    struct stat st;
    if (stat(arg, &st) != 0) return fail_with(err, errsize, "%s: %s", arg, strerror(errno));
    if (is_video) {
        if (S_ISDIR(st.st_mode)) return fail_with(err, errsize, "%s: is a directory, not a video", arg);
        in->kind = INPUT_VIDEO;
        return 0;
    }
    list l = {0};
    if (S_ISDIR(st.st_mode)) {
        in->kind = INPUT_DIR;
        seen_dirs seen = {0};
        int rc = scan(&l, arg, 0, &seen, err, errsize);
        free(seen.v);
        if (rc) {
            for (int i = 0; i < l.n; i++) free(l.v[i]);
            free(l.v);
            return -1;
        }
        if (l.n) qsort(l.v, (size_t)l.n, sizeof *l.v, by_path); /* l.v is NULL when empty */
    } else {
        in->kind = INPUT_IMAGE;
        if (list_add(&l, dup_str(arg))) return fail_with(err, errsize, "out of memory");
    }
    in->files = l.v;
    in->nfiles = l.n;
    return 0;
}

void input_free(input *in)
{
    for (int i = 0; i < in->nfiles; i++) free(in->files[i]);
    free(in->files);
    free(in->path);
    free(in->name);
    memset(in, 0, sizeof *in);
}

/* ---- frame streams ------------------------------------------------------------------------- */
int program_on_path(const char *name)
{
    const char *path = getenv("PATH");
    if (!path || !*path) return 0;
    char buf[4096];
    for (const char *p = path; *p;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (n && n + strlen(name) + 2 < sizeof buf) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, name);
            struct stat st;
            if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0) return 1;
        }
        if (!colon) break;
        p = colon + 1;
    }
    return 0;
}

/* s between single quotes for /bin/sh: every ' becomes '\'' */
static int shell_quote(char *dst, size_t size, const char *s)
{
    size_t n = 0;
    if (size < 3) return -1;
    dst[n++] = '\'';
    for (; *s; s++) {
        const char *piece = *s == '\'' ? "'\\''" : NULL;
        size_t len = piece ? 4 : 1;
        if (n + len + 2 > size) return -1;
        if (piece) memcpy(dst + n, piece, len);
        else dst[n] = *s;
        n += len;
    }
    dst[n++] = '\'';
    dst[n] = '\0';
    return 0;
}

static double parse_rate(const char *s)
{
    double num = 0, den = 1;
    if (sscanf(s, "%lf/%lf", &num, &den) < 1 || !(den > 0)) return 0;
    return num / den > 0 && num / den < 10000 ? num / den : 0;
}

/* line without its newline and, when ffprobe put the file's name first, without that */
static const char *probe_reason(char *line, const char *path)
{
    line[strcspn(line, "\r\n")] = '\0';
    const size_t n = strlen(path);
    if (strncmp(line, path, n) == 0 && line[n] == ':') line += n + 1;
    while (*line == ' ') line++;
    return line;
}

int video_probe(video_info *info, const char *path, char *err, size_t errsize)
{
    memset(info, 0, sizeof *info);
    if (!program_on_path("ffprobe"))
        return fail_with(err, errsize, "%s: ffprobe (part of ffmpeg) is not installed, so the frame "
                    "rate is unknown; give --fps", path), VIDEO_NO_RATE;
    char q[2048], cmd[2400];
    if (shell_quote(q, sizeof q, path)) return fail_with(err, errsize, "%s: path too long", path);
    /* ffprobe's own complaints come through the pipe too (2>&1), to be quoted, not shown raw */
    snprintf(cmd, sizeof cmd, "ffprobe -v error -select_streams v:0 -show_entries "
             "stream=avg_frame_rate,r_frame_rate:format=duration -of default=nw=1 -i %s "
             "</dev/null 2>&1", q);
    FILE *p = popen(cmd, "r");
    if (!p) return fail_with(err, errsize, "%s: cannot run ffprobe: %s", path, strerror(errno));
    char line[512], why[512] = "";
    double avg = 0, r = 0;
    int stream = 0;
    while (fgets(line, sizeof line, p)) {
        if (!strncmp(line, "avg_frame_rate=", 15)) avg = parse_rate(line + 15), stream = 1;
        else if (!strncmp(line, "r_frame_rate=", 13)) r = parse_rate(line + 13), stream = 1;
        else if (!strncmp(line, "duration=", 9)) info->duration = atof(line + 9);
        else if (!why[0]) snprintf(why, sizeof why, "%s", probe_reason(line, path));
    }
    int status = pclose(p);
    info->fps = avg > 0 ? avg : r;
    if (!(info->duration > 0)) info->duration = 0;
    if (status != 0)
        return fail_with(err, errsize, "%s: not a video ffmpeg can read%s%s%s", path,
                    why[0] ? " (ffprobe: " : "", why, why[0] ? ")" : "");
    if (!stream) return fail_with(err, errsize, "%s: has no video stream", path);
    if (info->fps <= 0)
        return fail_with(err, errsize, "%s: the video's frame rate is unknown; give --fps", path),
               VIDEO_NO_RATE;
    return 0;
}

int video_check_ffmpeg(const char *path, char *err, size_t errsize)
{
    if (program_on_path("ffmpeg")) return 0;
    return fail_with(err, errsize, "%s: --video needs ffmpeg, which is not installed (Debian: apt-get "
                "install ffmpeg); or decode the video elsewhere and pipe its frames in: "
                "ffmpeg -i VIDEO -f image2pipe -vcodec ppm - | mcnn-classify -", path);
}

int frame_stream_open(frame_stream *s, const input *in, double fps, char *err, size_t errsize)
{
    memset(s, 0, sizeof *s);
    if (in->kind == INPUT_STDIN) {
        s->f = stdin;
        snprintf(s->label, sizeof s->label, "stdin");
    } else {
        if (video_check_ffmpeg(in->path, err, errsize)) return -1;
        char q[2048], cmd[2700];
        if (shell_quote(q, sizeof q, in->path))
            return fail_with(err, errsize, "%s: path too long", in->path);
        /* ffmpeg's complaints go to a file, quoted in our message if it fails */
        snprintf(s->errlog, sizeof s->errlog, "/tmp/mcnn-ffmpeg-XXXXXX");
        int fd = mkstemp(s->errlog);
        if (fd < 0) s->errlog[0] = '\0';
        else close(fd);
        /* -nostdin: ffmpeg must not eat our terminal input; fps filter: a constant rate, so
         * frame i is at i / fps seconds */
        snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v error -i %s -an -sn -vf fps=%.9g "
                 "-f image2pipe -vcodec ppm - 2>%s", q, fps, fd < 0 ? "/dev/null" : s->errlog);
        s->f = popen(cmd, "r");
        if (!s->f) return fail_with(err, errsize, "%s: cannot run ffmpeg: %s", in->path, strerror(errno));
        s->is_pipe = 1;
        snprintf(s->label, sizeof s->label, "%s (ffmpeg)", in->path);
    }
    mcnn_ppm_stream_init(&s->ppm, s->f, s->label);
    return 0;
}

int frame_stream_next(frame_stream *s, mcnn_image *img)
{
    int got;
    if (mcnn_ppm_stream_next(&s->ppm, img, &got) != MCNN_OK) return -1;
    return got;
}

int frame_stream_close(frame_stream *s, int finished, char *err, size_t errsize)
{
    if (!s->f) return 0;
    int rc = 0;
    if (s->is_pipe) {
        /* Stopped early: closing the pipe makes ffmpeg end on a broken pipe, an exit status
         * that says nothing about the video, so it is not reported. */
        int status = pclose(s->f);
        char why[512] = "";
        FILE *log = s->errlog[0] ? fopen(s->errlog, "r") : NULL;
        if (log) {
            if (fgets(why, sizeof why, log)) why[strcspn(why, "\r\n")] = '\0';
            fclose(log);
        }
        if (s->errlog[0]) unlink(s->errlog);
        if (!finished)
            ;
        else if (status == -1)
            rc = fail_with(err, errsize, "%s: %s", s->label, strerror(errno));
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            rc = fail_with(err, errsize, "%s: ffmpeg exited with status %d%s%s%s", s->label,
                      WEXITSTATUS(status), why[0] ? " (" : "", why, why[0] ? ")" : "");
        else if (WIFSIGNALED(status))
            rc = fail_with(err, errsize, "%s: ffmpeg killed by signal %d", s->label, WTERMSIG(status));
    }
    s->f = NULL;
    return rc;
}
