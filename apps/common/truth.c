/* The true class from a file's name or folder (truth.h). */
#include "truth.h"

#include <ctype.h>
#include <string.h>

truth_source truth_source_parse(const char *s)
{
    if (!strcmp(s, "name")) return TRUTH_NAME;
    if (!strcmp(s, "dir")) return TRUTH_DIR;
    return TRUTH_NONE;
}

/* Bytes that count: ASCII letters and digits, and every byte of a non-ASCII character (CJK
 * names are all "punctuation" to isalnum, which would make every one of them equal ""). */
static int counts(unsigned char c) { return c >= 0x80 || isalnum(c); }

/* a and b equal when only letters and digits count, ASCII case ignored */
static int same_class(const char *a, size_t na, const char *b)
{
    size_t i = 0;
    for (;;) {
        while (i < na && !counts((unsigned char)a[i])) i++;
        while (*b && !counts((unsigned char)*b)) b++;
        if (i == na || !*b) return i == na && !*b; /* equal only if both ran out */
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)*b)) return 0;
        i++, b++;
    }
}

int truth_label(const char *path, truth_source src, const char *const *labels, int L, char *name,
                size_t namesize)
{
    const char *end = path + strlen(path), *start;
    while (end > path && end[-1] == '/') end--;
    const char *slash = end;
    while (slash > path && slash[-1] != '/') slash--;
    if (src == TRUTH_DIR) { /* the folder the file is in */
        end = slash > path ? slash - 1 : slash;
        start = end;
        while (start > path && start[-1] != '/') start--;
    } else { /* the file name, its extension and a leading "<number>-" dropped */
        start = slash;
        const char *dot = strrchr(start, '.');
        if (dot && dot > start && dot < end) end = dot;
        const char *p = start;
        while (p < end && isdigit((unsigned char)*p)) p++;
        if (p > start && p < end && (*p == '-' || *p == '_')) start = p + 1;
    }
    size_t n = (size_t)(end - start);
    if (namesize) {
        size_t k = n < namesize - 1 ? n : namesize - 1;
        memcpy(name, start, k);
        name[k] = '\0';
    }
    for (int l = 0; l < L; l++)
        if (n && same_class(start, n, labels[l])) return l;
    return -1;
}
