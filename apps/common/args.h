/* A tiny command-line option parser shared by the apps: a table of options in, values written
 * through pointers, positional arguments collected, and --help generated from the same table.
 *
 *   int top = 5; const char *model = NULL; arg_strings prompts = {0}, inputs = {0};
 *   const arg_spec specs[] = {
 *       {ARG_SECTION, .help = "Model"},
 *       {ARG_STRING, "--model", 'm', &model, "FILE", .help = "checkpoint (default: ...)"},
 *       {ARG_INT, "--top", 'k', &top, "K", .help = "labels per shot (default 5)",
 *        .min = 1, .max = 100000},
 *       {ARG_STRINGS, "--prompt", 0, &prompts, "TEMPLATE", .help = "repeatable"},
 *       {0}};
 *   switch (args_parse(specs, argc, argv, &inputs)) { case ARGS_HELP: ... case ARGS_ERROR: ... }
 *
 * Accepted forms: --name VALUE, --name=VALUE, -n VALUE; "--" ends the options; a lone "-" is a
 * positional argument (stdin).  Numbers must be whole (no trailing junk) and inside [min, max]
 * when min <= max.  Errors name the option and the offending value. */
#ifndef MCNN_APPS_ARGS_H
#define MCNN_APPS_ARGS_H

#include <stddef.h>
#include <stdio.h>

typedef enum arg_kind {
    ARG_END = 0,  /* terminates the table                                   */
    ARG_SECTION,  /* a heading in --help (help = the title)                 */
    ARG_FLAG,     /* int *: set to 1                                        */
    ARG_INT,      /* int *                                                  */
    ARG_DOUBLE,   /* double *                                               */
    ARG_STRING,   /* const char **: points into argv                        */
    ARG_STRINGS,  /* arg_strings *: repeatable, each value appended         */
    ARG_FLOAT3    /* float[3]: "a,b,c"                                      */
} arg_kind;

typedef struct arg_strings {
    const char **items; /* point into argv */
    int count;
} arg_strings;

typedef struct arg_spec {
    arg_kind kind;
    const char *name;     /* "--top" */
    char short_name;      /* 'k', or 0 */
    void *dest;
    const char *metavar;  /* "K" (NULL for flags) */
    const char *help;     /* may contain '\n' for more lines */
    double min, max;      /* range for ARG_INT / ARG_DOUBLE / ARG_FLOAT3; none unless min < max */
    int *seen;            /* optional: set to 1 when the option is given */
} arg_spec;

enum { ARGS_OK = 0, ARGS_HELP = 1, ARGS_ERROR = -1 };

/* The program's name in messages ("mcnn-classify"); set it first thing in main. */
extern const char *app_name;

/* Parse argv[1..argc).  Positional arguments are appended to *positional.  On ARGS_ERROR the
 * message has been printed to stderr ("<app>: --top: 'abc' is not an integer"). */
int args_parse(const arg_spec *specs, int argc, char **argv, arg_strings *positional);
/* usage: first lines; specs: the options; epilog: text after them (may be NULL). */
void args_help(FILE *f, const char *usage, const arg_spec *specs, const char *epilog);
void args_strings_free(arg_strings *s);

/* Print "<app>: <message>" to stderr. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void app_error(const char *fmt, ...);

/* For functions that return a message to their caller: format it into err, return -1. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int fail_with(char *err, size_t errsize, const char *fmt, ...);

#endif
