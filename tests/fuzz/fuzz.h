/* What every fuzz driver shares.  A driver is one function,
 *   int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
 * that hands the bytes to one parser or loader and must return 0 whatever they hold: a failure
 * the library reports (an mcnn_status) is a pass; a crash, a sanitizer report, a hang or an
 * allocation the fuzzer refuses is a find.  The same driver builds two ways (Makefile):
 *   - with clang -fsanitize=fuzzer,address,undefined: a libFuzzer binary (make fuzz);
 *   - with replay_main.c and any compiler: a program that runs each file of its corpus once
 *     (make test runs these over the seeds and tests/fuzz/regressions/<driver>/).
 * See docs/fuzzing.md. */
#ifndef MCNN_FUZZ_H
#define MCNN_FUZZ_H

#include "mcnn.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs made of two files (images + labels, a split + its label list, vocab.json + merges.txt)
 * are the first file, this line, then the second. */
#define FUZZ_SEPARATOR "\n--8<--\n"

/* Cut data at the first FUZZ_SEPARATOR: 1 with both parts set, 0 (parts untouched) without one. */
int fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *a_size,
               const uint8_t **b, size_t *b_size);

/* The bytes as a file the path-taking loaders can open: an anonymous in-memory file (memfd) seen
 * through /proc/self/fd, or a file in /tmp named after the process where memfd is missing.
 * slot (0..3) picks one of several files alive at once; each call rewrites that slot's file.
 * NULL when the file cannot be made (the driver then skips the input). */
const char *fuzz_file(int slot, const uint8_t *data, size_t size);

/* Read every byte of p[0..n): a decoder that promised n bytes but allocated fewer shows up
 * under AddressSanitizer here. */
void fuzz_touch(const void *p, size_t n);

/* A NUL-terminated copy (malloc), for APIs that take C strings; NULL when out of memory. */
char *fuzz_strdup(const uint8_t *data, size_t size);

/* The models' forward passes run only when their cost (multiply-adds, estimated from the
 * config) is below this: loading is what is fuzzed, one small forward checks that what loaded
 * is usable, and a big one would only slow the fuzzer down. */
#define FUZZ_MAX_FORWARD_MACS ((double)(1 << 27))

#endif
