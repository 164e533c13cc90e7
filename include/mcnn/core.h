/* libmcnn core: status codes and error messages, the arena, the parameter table,
 * threads and the random number generator.  Everything else builds on these. */
#ifndef MCNN_CORE_H
#define MCNN_CORE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define MCNN_API __attribute__((visibility("default")))
#else
#define MCNN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ---------------------------------------------------------------------------------
 * The version of the headers; mcnn_version() returns the library's, so a program can check that
 * the libmcnn.so it runs with is the one it was compiled for.  The Makefile reads these three
 * lines: the shared library is libmcnn.so.MAJOR.MINOR.PATCH with SONAME libmcnn.so.MAJOR.
 * While MAJOR is 0 a MINOR step may change the ABI (0.3: one preprocessing settings type,
 * mcnn_classifier_preprocess and mcnn_transform's own fields gone; 0.4: the load options of
 * ViT, ResNet, CLIP and the classifier gained precision and inference_only): rebuild programs
 * with it. */
#define MCNN_VERSION_MAJOR 0
#define MCNN_VERSION_MINOR 4
#define MCNN_VERSION_PATCH 0
#define MCNN_VERSION_STR_(x) #x
#define MCNN_VERSION_STR(x) MCNN_VERSION_STR_(x)
#define MCNN_VERSION_STRING                                                                 \
    MCNN_VERSION_STR(MCNN_VERSION_MAJOR) "." MCNN_VERSION_STR(MCNN_VERSION_MINOR) "."        \
        MCNN_VERSION_STR(MCNN_VERSION_PATCH)

/* "MAJOR.MINOR.PATCH" of the library linked in (static, never NULL). */
MCNN_API const char *mcnn_version(void);

/* ---- errors ------------------------------------------------------------------------------
 * Every fallible function returns an mcnn_status.  The detail (which file, which tensor,
 * which shapes) goes to a thread-local message read with mcnn_last_error().  Nothing in the
 * library exits or aborts on bad input. */
typedef enum mcnn_status {
    MCNN_OK = 0,
    MCNN_ERR_NOMEM,   /* an allocation failed                          */
    MCNN_ERR_IO,      /* a file could not be opened, read or written    */
    MCNN_ERR_FORMAT,  /* a file is corrupt or not the format expected   */
    MCNN_ERR_SHAPE,   /* tensor shapes do not fit together              */
    MCNN_ERR_ARG,     /* an argument is out of range                    */
    MCNN_ERR_NOT_FOUND, /* a named tensor, key or label is missing      */
    MCNN_ERR_UNSUPPORTED /* a valid input this build does not handle    */
} mcnn_status;

MCNN_API const char *mcnn_strerror(mcnn_status s); /* short and static: "shape mismatch"     */
MCNN_API const char *mcnn_last_error(void);        /* this thread's last failure, in detail */
MCNN_API void mcnn_clear_error(void);

/* ---- memory --------------------------------------------------------------------------------
 * mcnn_alloc returns 64-byte aligned memory (NULL on failure, or when bytes overflow); release
 * it with mcnn_free.  An arena is one such block handed out by bumping an offset. */
MCNN_API void *mcnn_alloc(size_t bytes);
MCNN_API void *mcnn_calloc(size_t count, size_t size); /* zeroed; checks count*size overflow */
MCNN_API void mcnn_free(void *p);

typedef struct mcnn_arena {
    unsigned char *base;
    size_t size;
    size_t used;
} mcnn_arena;

MCNN_API mcnn_status mcnn_arena_init(mcnn_arena *a, size_t bytes);
MCNN_API float *mcnn_arena_floats(mcnn_arena *a, size_t n); /* 64-byte aligned; NULL when full */
MCNN_API void mcnn_arena_reset(mcnn_arena *a);              /* forget everything, keep the block */
MCNN_API void mcnn_arena_free(mcnn_arena *a);
/* Bytes an arena needs for these float counts, with the alignment padding each one gets. */
MCNN_API size_t mcnn_arena_bytes_for(size_t n_floats);

/* ---- the parameter table -------------------------------------------------------------------
 * One row per parameter tensor: the single source of truth for allocation, checkpoint
 * load/save, optimizer groups and the tests.  Shapes are outermost first, as in PyTorch. */
#define MCNN_MAX_DIMS 4
typedef struct mcnn_param {
    char name[96];        /* checkpoint key, e.g. "blocks.3.attn.qkv.weight"       */
    int ndim;
    int64_t shape[MCNN_MAX_DIMS];
    int decay;            /* 1: weight decay applies; 0: norms, biases, embeddings */
    size_t offset;        /* in floats, into the model's param/grad/m/v blocks     */
    size_t numel;
} mcnn_param;

/* ---- threads ------------------------------------------------------------------------------ */
MCNN_API void mcnn_set_threads(int n); /* n <= 0: OpenMP's default (OMP_NUM_THREADS or cores) */
MCNN_API int mcnn_get_threads(void);   /* 1 in a build without OpenMP                        */

/* ---- random numbers -------------------------------------------------------------------------
 * xoshiro256** seeded through splitmix64: fast, reproducible, and its whole state is four
 * integers, so a checkpoint can save it and a resumed run continues the same stream. */
typedef struct mcnn_rng {
    uint64_t s[4];
} mcnn_rng;

MCNN_API void mcnn_rng_seed(mcnn_rng *r, uint64_t seed);
MCNN_API uint64_t mcnn_rng_next(mcnn_rng *r);
MCNN_API float mcnn_rng_uniform(mcnn_rng *r);               /* [0, 1)                     */
MCNN_API float mcnn_rng_normal(mcnn_rng *r);                /* mean 0, standard deviation 1 */
MCNN_API uint32_t mcnn_rng_below(mcnn_rng *r, uint32_t n); /* uniform in [0, n), n > 0    */

/* ---- time ----------------------------------------------------------------------------------- */
MCNN_API double mcnn_seconds(void); /* monotonic wall clock, for progress and benchmarks */

#ifdef __cplusplus
}
#endif
#endif
