/* Text on its way into JSON: the two checks the library itself makes before it writes
 * safetensors metadata or reads class names, public so that applications (mcnn-classify's
 * JSON and weak-label outputs) make the same ones.  Neither allocates; both are thread-safe. */
#ifndef MCNN_UTF8_H
#define MCNN_UTF8_H

#include "core.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
MCNN_API int mcnn_utf8_valid(const char *s, size_t n);

/* Write s[0..n) as a JSON string literal with its quotes into dst; returns the bytes written.
 * dst == NULL only counts them.  The result is always valid JSON: '"' and '\\' are escaped,
 * control characters (C0, DEL and C1) become \n, \t, \r or \u00XX, and bytes that are not
 * UTF-8 become \ufffd, one per maximal invalid subpart (Python's errors="replace"), so a
 * file name in another encoding stays readable and never breaks the document.  Everything
 * else, multibyte UTF-8 included, is copied as is. */
MCNN_API size_t mcnn_json_escape(char *dst, const char *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif
