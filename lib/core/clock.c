/* A monotonic clock.  Strict C11 hides clock_gettime, so ask for POSIX in this one file. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <time.h>

double mcnn_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
