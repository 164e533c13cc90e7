/* Aligned allocation and the bump arena.  Every block is 64-byte aligned: one cache line,
 * and a whole AVX-512 register, so vector loads never split a line. */
#if defined(__linux__)
#define _DEFAULT_SOURCE /* madvise */
#include <sys/mman.h>
#include <unistd.h>
#endif
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN 64

void *mcnn_alloc(size_t bytes)
{
    if (bytes == 0) bytes = ALIGN;
    if (bytes > SIZE_MAX - ALIGN) return NULL;
    size_t rounded = (bytes + ALIGN - 1) & ~(size_t)(ALIGN - 1); /* aligned_alloc wants a multiple */
    return aligned_alloc(ALIGN, rounded);
}

void *mcnn_calloc(size_t count, size_t size)
{
    int overflow = 0;
    size_t bytes = mcnn_mul_size(count, size, &overflow);
    if (overflow) return NULL;
    void *p = mcnn_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void mcnn_free(void *p)
{
    free(p);
}

size_t mcnn_arena_bytes_for(size_t n_floats)
{
    return (n_floats * sizeof(float) + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

mcnn_status mcnn_arena_init(mcnn_arena *a, size_t bytes)
{
    a->base = mcnn_alloc(bytes);
    a->size = a->base ? bytes : 0;
    a->used = 0;
    if (!a->base) return mcnn_set_error(MCNN_ERR_NOMEM, "arena: cannot allocate %zu bytes", bytes);
    return MCNN_OK;
}

float *mcnn_arena_floats(mcnn_arena *a, size_t n)
{
    size_t bytes = mcnn_arena_bytes_for(n);
    if (bytes > a->size - a->used) return NULL; /* caller reports MCNN_ERR_NOMEM */
    float *p = (float *)(a->base + a->used);
    a->used += bytes;
    return p;
}

void mcnn_arena_reset(mcnn_arena *a)
{
    a->used = 0;
}

void mcnn_arena_free(mcnn_arena *a)
{
    mcnn_free(a->base);
    a->base = NULL;
    a->size = a->used = 0;
}

size_t mcnn_release_pages(void *p, size_t bytes)
{
#if defined(__linux__) && defined(MADV_DONTNEED)
    const long page = sysconf(_SC_PAGESIZE);
    if (!p || page <= 0) return 0;
    const uintptr_t start = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    const uintptr_t end = ((uintptr_t)p + bytes) & ~((uintptr_t)page - 1);
    if (end <= start || madvise((void *)start, end - start, MADV_DONTNEED) != 0) return 0;
    return end - start;
#else
    (void)p, (void)bytes;
    return 0;
#endif
}
