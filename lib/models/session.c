/* The session envelope shared by every model (see session_internal.h and mcnn/session.h). */
#include "internal.h"
#include "session_internal.h"

#include <stdlib.h>

static const char *const kind_names[] = {"vit", "clip", "resnet", "classifier"};

mcnn_status mcnn_session_create(mcnn_session **out, session_kind kind, const void *model,
                                size_t acts_bytes, mcnn_status (*init)(void *acts, const void *model),
                                void (*release)(void *acts))
{
    *out = NULL;
    mcnn_session *s = malloc(sizeof *s);
    void *acts = calloc(1, acts_bytes);
    if (!s || !acts) {
        free(s);
        free(acts);
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s session: out of memory", kind_names[kind]);
    }
    mcnn_status st = init ? init(acts, model) : MCNN_OK;
    if (st != MCNN_OK) {
        free(s);
        free(acts);
        return st;
    }
    *s = (mcnn_session){kind, model, acts, release};
    *out = s;
    return MCNN_OK;
}

mcnn_status mcnn_session_check(const mcnn_session *s, session_kind kind, const char *fn)
{
    if (!s) return mcnn_set_error(MCNN_ERR_ARG, "%s: no session", fn);
    if (s->kind != kind)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: the session is a %s session, not a %s one", fn,
                              kind_names[s->kind], kind_names[kind]);
    return MCNN_OK;
}

void mcnn_session_free(mcnn_session *s)
{
    if (!s) return;
    s->release(s->acts);
    free(s->acts);
    free(s);
}
