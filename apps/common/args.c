/* The option parser; see args.h. */
#include "args.h"

#include "escape.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *app_name = "mcnn";

/* The message is one line of plain text whatever the names in it hold (escape.h). */
void app_error(const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf) vsnprintf(buf, (size_t)n + 1, fmt, again);
    va_end(again);
    char *shown = buf ? display_text(buf, NULL) : NULL;
    fprintf(stderr, "%s: %s\n", app_name, shown ? shown : "(out of memory for the message)");
    free(shown), free(buf);
}

int fail_with(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    return -1;
}

static int append(arg_strings *s, const char *v)
{
    const char **p = realloc(s->items, (size_t)(s->count + 1) * sizeof *p);
    if (!p) return -1;
    s->items = p;
    s->items[s->count++] = v;
    return 0;
}

void args_strings_free(arg_strings *s)
{
    free(s->items);
    s->items = NULL;
    s->count = 0;
}

static int has_range(const arg_spec *o) { return o->min < o->max; }

static int range_error(const arg_spec *o, const char *v)
{
    app_error("%s: %s is outside %g..%g", o->name, v, o->min, o->max);
    return ARGS_ERROR;
}

static int parse_double(const arg_spec *o, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v)) {
        app_error("%s: '%s' is not a number", o->name, s);
        return ARGS_ERROR;
    }
    if (has_range(o) && (v < o->min || v > o->max)) return range_error(o, s);
    *out = v;
    return ARGS_OK;
}

static int set_value(const arg_spec *o, const char *v)
{
    switch (o->kind) {
    case ARG_INT: {
        char *end;
        errno = 0;
        long x = strtol(v, &end, 10);
        if (end == v || *end || errno == ERANGE || x < -2147483647L || x > 2147483647L) {
            app_error("%s: '%s' is not an integer", o->name, v);
            return ARGS_ERROR;
        }
        if (has_range(o) && (x < o->min || x > o->max)) return range_error(o, v);
        *(int *)o->dest = (int)x;
        return ARGS_OK;
    }
    case ARG_DOUBLE:
        return parse_double(o, v, (double *)o->dest);
    case ARG_STRING:
        *(const char **)o->dest = v;
        return ARGS_OK;
    case ARG_STRINGS:
        if (append((arg_strings *)o->dest, v)) {
            app_error("out of memory");
            return ARGS_ERROR;
        }
        return ARGS_OK;
    case ARG_FLOAT3: {
        float f[3];
        const char *p = v;
        for (int i = 0; i < 3; i++) {
            char part[64];
            const char *comma = strchr(p, ',');
            size_t n = comma && i < 2 ? (size_t)(comma - p) : strlen(p);
            if ((i < 2 && !comma) || n == 0 || n >= sizeof part) {
                app_error("%s: '%s' is not three comma-separated numbers", o->name, v);
                return ARGS_ERROR;
            }
            memcpy(part, p, n);
            part[n] = '\0';
            double d;
            if (parse_double(o, part, &d) != ARGS_OK) return ARGS_ERROR;
            f[i] = (float)d;
            p += n + (i < 2);
        }
        memcpy(o->dest, f, sizeof f);
        return ARGS_OK;
    }
    default:
        return ARGS_ERROR;
    }
}

static const arg_spec *find(const arg_spec *specs, const char *name, size_t len, char short_name)
{
    for (const arg_spec *o = specs; o->kind != ARG_END; o++) {
        if (o->kind == ARG_SECTION) continue;
        if (short_name ? o->short_name == short_name
                       : strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    }
    return NULL;
}

int args_parse(const arg_spec *specs, int argc, char **argv, arg_strings *positional)
{
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || strcmp(a, "-") == 0) {
            if (append(positional, a)) return app_error("out of memory"), ARGS_ERROR;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return ARGS_HELP;
        const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
        const arg_spec *o = a[1] == '-' ? find(specs, a, eq ? (size_t)(eq - a) : strlen(a), 0)
                            : a[2] == '\0' ? find(specs, NULL, 0, a[1]) : NULL;
        if (!o) {
            app_error("unknown option '%s' (try --help)", a);
            return ARGS_ERROR;
        }
        if (o->seen) *o->seen = 1;
        if (o->kind == ARG_FLAG) {
            if (eq) return app_error("%s takes no value", o->name), ARGS_ERROR;
            *(int *)o->dest = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) {
                app_error("%s needs a value (%s)", o->name, o->metavar ? o->metavar : "VALUE");
                return ARGS_ERROR;
            }
            v = argv[++i];
        }
        if (set_value(o, v) != ARGS_OK) return ARGS_ERROR;
    }
    return ARGS_OK;
}

void args_help(FILE *f, const char *usage, const arg_spec *specs, const char *epilog)
{
    fputs(usage, f);
    for (const arg_spec *o = specs; o->kind != ARG_END; o++) {
        if (o->kind == ARG_SECTION) {
            fprintf(f, "\n%s:\n", o->help);
            continue;
        }
        char left[64];
        int n = o->short_name ? snprintf(left, sizeof left, "  -%c, %s", o->short_name, o->name)
                              : snprintf(left, sizeof left, "      %s", o->name);
        if (o->metavar && n > 0 && (size_t)n < sizeof left)
            snprintf(left + n, sizeof left - (size_t)n, " %s", o->metavar);
        fprintf(f, "%-28s", left);
        if (strlen(left) >= 28) fprintf(f, "\n%-28s", "");
        for (const char *h = o->help; *h;) { /* continuation lines are indented */
            const char *nl = strchr(h, '\n');
            size_t len = nl ? (size_t)(nl - h) : strlen(h);
            fprintf(f, "%.*s\n", (int)len, h);
            if (!nl) break;
            h = nl + 1;
            fprintf(f, "%-28s", "");
        }
    }
    if (epilog) fprintf(f, "\n%s", epilog);
}
