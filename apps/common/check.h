/* CHECK(expr): run a library call; on failure print the library's message and exit 1.
 * For apps only: the library itself never exits (it returns mcnn_status). */
#ifndef MCNN_APPS_CHECK_H
#define MCNN_APPS_CHECK_H

#include "args.h"
#include "mcnn.h"

#include <stdio.h>
#include <stdlib.h>

#define CHECK(expr)                                                                         \
    do {                                                                                    \
        mcnn_status check_status_ = (expr);                                                 \
        if (check_status_ != MCNN_OK) {                                                     \
            app_error("%s", mcnn_last_error());                                             \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

#endif
