/* Sessions: one loaded model, many threads.
 *
 * A model handle (mcnn_vit, mcnn_clip, mcnn_resnet, mcnn_classifier) holds the weights; a
 * session holds everything one caller's forward writes: the activation arena, the per-layer
 * scratch and the results that stay readable afterwards (features, intermediates).  A session
 * reads its model and never writes it, so any number of sessions, one per thread, can run
 * forwards on the same model at the same time, and each gives the bits one thread would.
 *
 *   mcnn_session *s;
 *   mcnn_vit_session_create(&s, model);            // per thread; cheap until the first forward
 *   mcnn_vit_session_forward(s, logits, images, B);
 *   mcnn_session_free(s);                          // before the model is freed
 *
 * Rules (docs/api.md has them for every object):
 * - One session is used by one thread at a time (not synchronised).  Any number of sessions
 *   may run on one model at once.
 * - The model must outlive its sessions and must not change while they run: no training step,
 *   no loading into it, no set_labels / set_preprocess / freeze, no free.
 * - The calls that take the model itself (mcnn_vit_forward, mcnn_clip_encode_image, ...) use a
 *   session the model owns: they are for one thread at a time, and not at the same time as
 *   anything that changes the model.  Training (backward, gradients, optimizer state, batch-norm
 *   running statistics) stays on the model.
 * - A pointer returned by a session (features, intermediates) is owned by the session and
 *   stays valid, with the values of the last forward, until the session's next forward of the
 *   same kind or mcnn_session_free.  Copy what you keep longer.
 * - A session's arena is sized by its first forward and re-sized when the batch size (or, for
 *   ResNet, the image size) changes.  The memory is the session's: N sessions take N arenas. */
#ifndef MCNN_SESSION_H
#define MCNN_SESSION_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcnn_session mcnn_session;

/* Releases the session's memory; NULL is ignored.  The model is not touched. */
MCNN_API void mcnn_session_free(mcnn_session *s);

#ifdef __cplusplus
}
#endif
#endif
