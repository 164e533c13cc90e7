/* A session: the per-caller half of a model (activations, arenas, what a forward writes),
 * bound to one read-only model.  Each model's file makes its own kind of activations and the
 * calls that use them; this is the common envelope. */
#ifndef MCNN_SESSION_INTERNAL_H
#define MCNN_SESSION_INTERNAL_H

#include "mcnn.h"

typedef enum session_kind {
    SESSION_VIT, SESSION_CLIP, SESSION_RESNET, SESSION_CLASSIFIER
} session_kind;

struct mcnn_session {
    session_kind kind;
    const void *model;            /* the model it reads; never written through the session */
    void *acts;                   /* vit_acts, clip_acts, resnet_acts, or (classifier) the
                                     session of the network inside                         */
    void (*release)(void *acts);  /* frees what acts points to (not acts itself)            */
};

/* A session for model with acts_bytes of zeroed activations, set up by init (may be NULL) and
 * released by release at mcnn_session_free. */
mcnn_status mcnn_session_create(mcnn_session **out, session_kind kind, const void *model,
                                size_t acts_bytes, mcnn_status (*init)(void *acts, const void *model),
                                void (*release)(void *acts));
/* MCNN_ERR_ARG naming fn when s is NULL or not of this kind. */
mcnn_status mcnn_session_check(const mcnn_session *s, session_kind kind, const char *fn);

#endif
