/* Shot-boundary detection over a stream of frames, content-based as PySceneDetect's
 * ContentDetector (threshold 27, min_scene_len 15, weights 1,1,1,0, no edges):
 *
 *   each frame -> HSV exactly as OpenCV's 8-bit cvtColor(frame, COLOR_BGR2HSV) on the same
 *                 pixels (H in 0..179, S and V in 0..255)
 *   score(f)   = ( mean|ΔH| + mean|ΔS| + mean|ΔV| ) / 3     between frame f and frame f - 1
 *   cut at f   when score(f) >= threshold and the current shot already has >= min_len frames
 *
 * The rule for the minimum length is PySceneDetect 0.6's (FlashFilter.Mode.SUPPRESS in later
 * versions): a cut is dropped, not postponed, when the shot it would end is too short.
 * PySceneDetect also downscales wide frames first (to about 256 pixels wide); this detector
 * works on the frames it is given, so give it frames of the size you want it to compare.
 * docs/classify.md explains the choice of numbers. */
#ifndef MCNN_SHOTS_H
#define MCNN_SHOTS_H

#include "core.h"
#include "image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* OpenCV's cvtColor(COLOR_RGB2HSV) for 8-bit pixels, bit for bit: V = max(R, G, B),
 * S = round(255 · (V - min) / V), H = round(30 · (sector + offset)) in 0..179, computed with
 * OpenCV's 12-bit fixed-point reciprocal tables.  rgb and hsv are (n, 3) interleaved. */
MCNN_API void mcnn_rgb_to_hsv(unsigned char *hsv, const unsigned char *rgb, size_t n);

/* ContentDetector's frame score between two HSV frames of n pixels each: the mean absolute
 * difference of each channel (components[0..2] = ΔH, ΔS, ΔV when components is not NULL),
 * averaged over the three channels. */
MCNN_API double mcnn_hsv_content_score(const unsigned char *hsv_a, const unsigned char *hsv_b,
                                       size_t n, double components[3]);

typedef struct mcnn_shot_detector {
    double threshold;      /* a cut needs a score >= threshold (0..255 scale): 27      */
    int min_len;           /* frames a shot must have before it may end: 15             */
    int width, height;     /* of the previous frame                                     */
    unsigned char *prev;   /* its HSV pixels (owned)                                    */
    unsigned char *cur;    /* scratch for the current frame's HSV (owned)               */
    int64_t frames;        /* frames pushed so far                                      */
    int64_t shot_start;    /* first frame of the current shot                           */
    double score;          /* score of the last frame pushed (0 for the first frame)    */
    double components[3];  /* its ΔH, ΔS, ΔV                                            */
} mcnn_shot_detector;

/* threshold >= 0 and min_len >= 1 (1: any frame may cut). */
MCNN_API mcnn_status mcnn_shot_detector_init(mcnn_shot_detector *d, double threshold,
                                             int min_len);
/* Push the next frame (8-bit, RGB or gray): *cut = 1 when it starts a new shot (never for
 * the first frame).  A frame of another size than the previous one cannot be compared, and
 * always starts a new shot (score reported as 255). */
MCNN_API mcnn_status mcnn_shot_detector_push(mcnn_shot_detector *d, const mcnn_image *frame,
                                             int *cut);
MCNN_API void mcnn_shot_detector_free(mcnn_shot_detector *d);

#ifdef __cplusplus
}
#endif
#endif
