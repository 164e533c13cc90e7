/* Status codes and the thread-local error message behind mcnn_last_error(). */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

const char *mcnn_strerror(mcnn_status s)
{
    switch (s) {
    case MCNN_OK: return "ok";
    case MCNN_ERR_NOMEM: return "out of memory";
    case MCNN_ERR_IO: return "input/output error";
    case MCNN_ERR_FORMAT: return "corrupt or unrecognised file";
    case MCNN_ERR_SHAPE: return "shape mismatch";
    case MCNN_ERR_ARG: return "invalid argument";
    case MCNN_ERR_NOT_FOUND: return "not found";
    case MCNN_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

const char *mcnn_last_error(void)
{
    return last_error[0] ? last_error : "no error recorded";
}

void mcnn_clear_error(void)
{
    last_error[0] = '\0';
}

mcnn_status mcnn_set_error(mcnn_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

mcnn_status mcnn_wrap_error(mcnn_status s, const char *fmt, ...)
{
    char prefix[512], old[sizeof last_error];
    memcpy(old, last_error, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(last_error, sizeof last_error, "%s%s", prefix, old);
    return s;
}
