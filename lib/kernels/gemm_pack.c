/* Packing: copy a block of op(A) or op(B) into the layout the micro-kernel reads.
 *
 *   op(A) block (mc x kc)  ->  panels of mr rows, each stored k-major:  a[k*mr + i]
 *   op(B) block (kc x nc)  ->  panels of nr cols, each stored k-major:  b[k*nr + j]
 *
 *   A block          packed A (mr = 4 here)        B block        packed B (nr = 4)
 *   a00 a01 a02      a00 a10 a20 a30 | a01 a11 ..   b00 b01 ..      b00 b01 b02 b03 | b10 b11 ..
 *   a10 a11 a12      (panel 0: rows 0..3, then      b10 b11 ..      (panel 0: cols 0..3, then
 *   ...               panel 1: rows 4..7 ...)       ...              panel 1: cols 4..7 ...)
 *
 * This is where transposes and leading dimensions disappear: whatever the caller's layout,
 * the micro-kernel walks both panels with unit stride, one k at a time.  The last panel is
 * padded with zeros to a full mr (nr), so the kernel computes a whole tile and only the
 * write-back has to know where C ends.  Each block is packed once and then read many times
 * (the A block by every column panel of B, the B panel by every row block of A), so the copy
 * costs little next to the multiply. */
#include "gemm_internal.h"

#include <string.h>

#define MAX_PANEL 64 /* largest mr or nr of any kernel */

/* Two of the four cases are transposes (op(A) = A, and op(B) = B^T as in a linear layer): the
 * source runs along k, the panel across it.  Element by element that is one load and one store
 * per float from eight or more rows at once; the vector kernels instead transpose 8 x 8 blocks
 * in registers, three rounds of interleaving (row i with row i+4) that swap the row and column
 * bits of each element's index.  __builtin_shufflevector: GCC >= 12 and clang. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define HAVE_VECTOR_TRANSPOSE 1
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x8u __attribute__((vector_size(32), aligned(4), may_alias));

/* dst[c*ldd + r] = src[r*lds + c] for r, c < 8 */
__attribute__((target("avx2"))) static void transpose_8x8(const float *src, size_t lds,
                                                          float *dst, size_t ldd)
{
    f32x8 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = *(const f32x8u *)(src + i * lds);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4; i++) {
            t[2 * i] = __builtin_shufflevector(r[i], r[i + 4], 0, 8, 1, 9, 2, 10, 3, 11);
            t[2 * i + 1] = __builtin_shufflevector(r[i], r[i + 4], 4, 12, 5, 13, 6, 14, 7, 15);
        }
        for (int i = 0; i < 8; i++) r[i] = t[i];
    }
    for (int i = 0; i < 8; i++) *(f32x8u *)(dst + i * ldd) = r[i];
}

typedef float f32x4 __attribute__((vector_size(16)));
typedef float f32x4u __attribute__((vector_size(16), aligned(4), may_alias));

/* dst[c*ldd + r] = src[r*lds + c] for r < 4, c < 8: the 4 rows left over from a 12-row panel */
__attribute__((target("avx2"))) static void transpose_4x8(const float *src, size_t lds,
                                                          float *dst, size_t ldd)
{
    f32x8 r[4], t[4];
    for (int i = 0; i < 4; i++) r[i] = *(const f32x8u *)(src + i * lds);
    for (int i = 0; i < 4; i += 2) { /* pairs of rows, by columns {0, 1, 4, 5} and {2, 3, 6, 7} */
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    f32x4 c[8] = { /* column j: rows 0, 1 from t[0 or 1], rows 2, 3 from t[2 or 3] */
        __builtin_shufflevector(t[0], t[2], 0, 1, 8, 9),
        __builtin_shufflevector(t[0], t[2], 2, 3, 10, 11),
        __builtin_shufflevector(t[1], t[3], 0, 1, 8, 9),
        __builtin_shufflevector(t[1], t[3], 2, 3, 10, 11),
        __builtin_shufflevector(t[0], t[2], 4, 5, 12, 13),
        __builtin_shufflevector(t[0], t[2], 6, 7, 14, 15),
        __builtin_shufflevector(t[1], t[3], 4, 5, 12, 13),
        __builtin_shufflevector(t[1], t[3], 6, 7, 14, 15),
    };
    for (int i = 0; i < 8; i++) *(f32x4u *)(dst + i * ldd) = c[i];
}
#endif
#endif

/* dst[k*ldd + i] = src[i][k] for i < h, k < kc: the transposing copy, by 8 x 8 blocks where it
 * can (vec: the CPU has AVX2), then element by element. */
static void transpose_rows(const float *const *src, int h, int kc, float *dst, int ldd, int vec)
{
    int hv = 0, k8 = 0; /* the part done by blocks: rows [0, hv), columns [0, k8) */
#ifdef HAVE_VECTOR_TRANSPOSE
    if (vec && h >= 4) {
        k8 = kc / 8 * 8;
        size_t lds = (size_t)(src[1] - src[0]); /* the rows are evenly spaced */
        /* 8 source rows at a time, each read from start to end: 8 long sequential streams
         * that the hardware prefetcher follows.  (Measured against interleaving the rows 16
         * or 64 k at a time, which finishes each destination line sooner: 512 x 49 x 4608,
         * whose A is packed this way, ran at 58 GFLOP/s with chunks of 64, 69 like this.) */
        for (; hv + 8 <= h; hv += 8)
            for (int k = 0; k < k8; k += 8)
                transpose_8x8(src[hv] + k, lds, dst + (size_t)k * ldd + hv, (size_t)ldd);
        if (hv + 4 <= h) {
            for (int k = 0; k < k8; k += 8)
                transpose_4x8(src[hv] + k, lds, dst + (size_t)k * ldd + hv, (size_t)ldd);
            hv += 4;
        }
    }
#else
    (void)vec;
#endif
    for (int k = 0; k < kc; k++)
        for (int i = k < k8 ? hv : 0; i < h; i++) dst[(size_t)k * ldd + i] = src[i][k];
}

/* Rows [i0, i0+mc) x cols [p0, p0+kc) of op(A) -> panels [first, last) of kc x mr. */
void mcnn_gemm_pack_a(int trans_a, const float *A, int lda, int i0, int mc, int p0, int kc,
                      int mr, int first, int last, float *dst, int vec)
{
    for (int r = first; r < last; r++) {
        float *d = dst + (size_t)r * kc * mr;  /* (kc, mr) */
        int row = i0 + r * mr;
        int h = mc - r * mr < mr ? mc - r * mr : mr;  /* real rows in this panel */
        if (trans_a) {
            /* op(A)[i][k] = A[k][i]: each k is already a contiguous run of rows */
            for (int k = 0; k < kc; k++) {
                const float *src = A + (size_t)(p0 + k) * lda + row;
                for (int i = 0; i < h; i++) d[k * mr + i] = src[i];
                for (int i = h; i < mr; i++) d[k * mr + i] = 0.0f;
            }
        } else {
            /* op(A)[i][k] = A[i][k]: gather one element from each of the h rows per k */
            const float *src[MAX_PANEL];
            for (int i = 0; i < h; i++) src[i] = A + (size_t)(row + i) * lda + p0;
            transpose_rows(src, h, kc, d, mr, vec);
            for (int k = 0; k < kc; k++)
                for (int i = h; i < mr; i++) d[k * mr + i] = 0.0f;
        }
    }
}

/* Rows [p0, p0+kc) x cols [j0, j0+nc) of op(B) -> panels [first, last) of kc x nr. */
void mcnn_gemm_pack_b(int trans_b, const float *B, int ldb, int p0, int kc, int j0, int nc,
                      int nr, int first, int last, float *dst, int vec)
{
    for (int r = first; r < last; r++) {
        float *d = dst + (size_t)r * kc * nr;  /* (kc, nr) */
        int col = j0 + r * nr;
        int w = nc - r * nr < nr ? nc - r * nr : nr;  /* real columns in this panel */
        if (!trans_b) {
            /* op(B)[k][j] = B[k][j]: a contiguous copy of w floats per k */
            for (int k = 0; k < kc; k++) {
                const float *src = B + (size_t)(p0 + k) * ldb + col;
                memcpy(d + (size_t)k * nr, src, (size_t)w * sizeof(float));
                for (int j = w; j < nr; j++) d[k * nr + j] = 0.0f;
            }
        } else {
            /* op(B)[k][j] = B[j][k] (a linear layer's (OUT, IN) weight): a transpose */
            const float *src[MAX_PANEL];
            for (int j = 0; j < w; j++) src[j] = B + (size_t)(col + j) * ldb + p0;
            transpose_rows(src, w, kc, d, nr, vec);
            for (int k = 0; k < kc; k++)
                for (int j = w; j < nr; j++) d[k * nr + j] = 0.0f;
        }
    }
}
