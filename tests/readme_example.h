/* README.md's "Using the library from C", for the tests that build it (test_readme.c against the
 * build tree, test_install.c against an installed copy): its example program and commands are
 * read from README.md itself, so README cannot drift from what is tested. */
#ifndef MCNN_README_EXAMPLE_H
#define MCNN_README_EXAMPLE_H

#include <stdio.h>
#include <string.h>

/* Copy the body of the n-th (0-based) fenced block whose opening line starts with fence
 * ("```c", "```sh") to path; returns its line count (0: no such block). */
static int readme_block(const char *fence, int n, const char *path)
{
    FILE *in = fopen("README.md", "r"), *out = fopen(path, "w");
    char line[1024];
    int in_block = 0, copying = 0, seen = 0, lines = 0;
    while (in && out && fgets(line, sizeof line, in)) {
        if (strncmp(line, "```", 3) != 0) {
            if (copying) fputs(line, out), lines++;
            continue;
        }
        if (in_block) { /* a closing fence */
            if (copying) break;
            in_block = 0;
            continue;
        }
        in_block = 1; /* an opening fence: is it the block asked for? */
        if (strncmp(line, fence, strlen(fence)) == 0 && line[strlen(fence)] == '\n')
            copying = seen++ == n;
    }
    if (in) fclose(in);
    if (out) fclose(out);
    return lines;
}

/* The example program: README's first C block. */
static inline int readme_example(const char *path)
{
    return readme_block("```c", 0, path);
}

/* Run cmd through the shell; its first output line goes to out, the rest is read and dropped.
 * Returns the exit status (as pclose). */
static int readme_run(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    out[0] = '\0';
    if (!fgets(out, (int)size, p)) out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    char rest[256];
    while (fgets(rest, sizeof rest, p)) {
    }
    return pclose(p);
}

/* The example prints "label score" lines, best first: the first line's label. */
static inline const char *readme_top_label(char *line)
{
    char *space = strrchr(line, ' ');
    if (space) *space = '\0';
    return line;
}

#endif
