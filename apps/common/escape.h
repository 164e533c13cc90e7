/* Names from the file system (and labels) on their way out: file names are bytes, not text, so a
 * name may hold invalid UTF-8, newlines, tabs or terminal escape sequences.
 *   - JSON and safetensors metadata must be valid UTF-8: each byte that is not part of a valid
 *     UTF-8 sequence is read as the Latin-1 character of the same value (0xE9 -> U+00E9 'é'),
 *     so a name written by an old Latin-1 system comes out right and two names never merge
 *     into one key (a U+FFFD replacement would make "a\xE9" and "a\xE8" the same key);
 *   - a terminal (the table) and line-based files (weak labels) get no raw control character:
 *     \n \r \t as those two characters, other C0 and C1 controls, DEL and invalid bytes as
 *     \xNN, so one name is one line and cannot move the cursor or recolour the screen. */
#ifndef MCNN_APPS_ESCAPE_H
#define MCNN_APPS_ESCAPE_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 for an invalid byte. */
size_t utf8_sequence(const char *s, size_t n);
/* s as valid UTF-8 (invalid bytes as Latin-1), malloc'ed; NULL when out of memory. */
char *utf8_from_name(const char *s);
/* s as a JSON string literal with its quotes, valid UTF-8, malloc'ed (NULL: out of memory). */
char *json_quote(const char *s);
/* s for a terminal or a text line, malloc'ed (NULL: out of memory); *columns (may be NULL) gets
 * its display width: East Asian wide characters count 2, combining marks 0, others 1. */
char *display_text(const char *s, int *columns);
/* display_text fitted to width columns: padded with spaces on the right, or, when longer, its
 * start replaced by "…" so the end (a file's name) stays.  malloc'ed (NULL: out of memory). */
char *display_fit(const char *s, int width);

#endif
