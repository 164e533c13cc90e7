/* --resume: the run's own options from its checkpoint, the folder it started in, and the refusal
 * of options that would change it. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Options that say how this invocation runs, not what it trains: free to differ on --resume. */
static int leaves_run_unchanged(const char *name)
{
    static const char *const names[] = {"--out", "--resume", "--threads", "--stop-after",
                                        "--progress", "--quiet", "--timeout", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(name, names[i]) == 0) return 1;
    return 0;
}

static int same_value(const arg_spec *a, const arg_spec *b)
{
    switch (a->kind) {
    case ARG_FLAG:
    case ARG_INT: return *(const int *)a->dest == *(const int *)b->dest;
    case ARG_DOUBLE: return *(const double *)a->dest == *(const double *)b->dest;
    case ARG_FLOAT3: return memcmp(a->dest, b->dest, 3 * sizeof(float)) == 0;
    case ARG_STRING: {
        const char *x = *(const char *const *)a->dest, *y = *(const char *const *)b->dest;
        return x == y || (x && y && strcmp(x, y) == 0);
    }
    default: return 1;
    }
}

/* --resume continues a run as it started: an option given now with another value than the
 * run's (both tables come from make_specs, so row i is the same option) is refused by name. */
static int refuse_changes(const arg_spec *now, const arg_spec *run, const char *out)
{
    char names[1024] = "";
    size_t n = 0;
    int count = 0;
    for (int i = 0; now[i].kind != ARG_END; i++) {
        if (now[i].kind == ARG_SECTION || !now[i].seen || !*now[i].seen) continue;
        if (leaves_run_unchanged(now[i].name) || same_value(&now[i], &run[i])) continue;
        if (n < sizeof names)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", count ? ", " : "",
                                  now[i].name);
        count++;
    }
    if (!count) return 0;
    app_error("--resume continues the run in %s with the options it started with: %s would "
              "change it (train differently in a new run with another --out)", out, names);
    return -1;
}

/* What --resume reads from a run's checkpoint; the options point into args_cut. */
typedef struct run_record {
    char *args_cut, *args, *cwd, *data;
    char **argv;
} run_record;

static void run_record_free(run_record *r)
{
    free(r->args_cut), free(r->args), free(r->cwd), free(r->data), free(r->argv);
    memset(r, 0, sizeof *r);
}

static char *dup_meta(mcnn_safetensors *st, const char *key)
{
    const char *v = mcnn_safetensors_meta(st, key);
    char *copy = v ? malloc(strlen(v) + 1) : NULL;
    if (copy) memcpy(copy, v, strlen(v) + 1);
    return copy;
}

/* Re-parse the options a resumed run started with (stored in its checkpoint) into o and specs,
 * and enter the folder it started in, so that its relative paths mean what they meant (now's
 * --out is absolute by then).  0, or an exit status after printing why. */
static int resume_options(options *o, arg_spec *specs, const options *now, run_record *r)
{
    const char *out = now->out;
    char ckpt[4300];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    mcnn_safetensors *st;
    if (mcnn_safetensors_open(&st, ckpt) != MCNN_OK) {
        app_error("%s", mcnn_last_error());
        return EXIT_FAILED;
    }
    if (!mcnn_safetensors_meta(st, "train_args")) {
        app_error("%s: no \"train_args\" metadata: not a checkpoint of mcnn-train", ckpt);
        mcnn_safetensors_close(st);
        return EXIT_FAILED;
    }
    r->args_cut = dup_meta(st, "train_args"), r->args = dup_meta(st, "train_args");
    r->cwd = dup_meta(st, "train_cwd"), r->data = dup_meta(st, "train_data");
    mcnn_safetensors_close(st);
    r->argv = r->args_cut ? calloc(strlen(r->args_cut) + 2, sizeof *r->argv) : NULL;
    if (!r->args || !r->argv) {
        app_error("out of memory");
        return EXIT_FAILED;
    }
    int ac = 0;
    r->argv[ac++] = (char *)"mcnn-train";
    for (char *p = r->args_cut, *q; p; p = q) {
        q = strchr(p, '\n');
        if (q) *q++ = 0;
        if (*p) r->argv[ac++] = p;
    }
    default_options(o);
    make_specs(specs, o);
    arg_strings pos = {0};
    const int parsed = args_parse(specs, ac, r->argv, &pos);
    args_strings_free(&pos);
    if (parsed != ARGS_OK) {
        app_error("%s: the run's options (\"train_args\") do not parse", ckpt);
        return EXIT_FAILED;
    }
    char here[4096];
    if (r->cwd && getcwd(here, sizeof here) && strcmp(here, r->cwd) != 0) {
        if (chdir(r->cwd) != 0)
            fprintf(stderr, "%s: warning: the run started in %s, which cannot be entered (%s): "
                    "its relative paths are read from here\n", app_name, r->cwd, strerror(errno));
        else if (!now->quiet)
            fprintf(stderr, "%s: the run's relative paths are read from %s, where it started\n",
                    app_name, r->cwd);
    }
    /* this invocation decides where, how fast and how chatty */
    o->out = out;
    o->resume = 1;
    o->threads = now->threads, o->stop_after = now->stop_after;
    o->progress = now->progress, o->quiet = now->quiet;
    o->run_data = r->data;
    return 0;
}


/* Resume the run in now->out (an absolute path is made of it first). */
int resume(const options *now, const arg_spec *now_specs)
{
    char here[4096], out[4200];
    const char *given = now->out ? now->out : "run";
    if (given[0] == '/' || !getcwd(here, sizeof here)) snprintf(out, sizeof out, "%s", given);
    else snprintf(out, sizeof out, "%s/%s", here, given);
    options o, n = *now;
    n.out = out;
    arg_spec specs[MAX_SPECS];
    run_record r = {0};
    int status = resume_options(&o, specs, &n, &r);
    if (!status && refuse_changes(now_specs, specs, given)) status = EXIT_USAGE;
    if (!status) status = cmd_train(&o, r.args);
    run_record_free(&r);
    return status;
}
