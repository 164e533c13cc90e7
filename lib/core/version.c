/* The library's own version, compiled in: differs from MCNN_VERSION_STRING only when a program
 * runs with another libmcnn.so than the headers it was compiled against. */
#include "internal.h"

const char *mcnn_version(void)
{
    return MCNN_VERSION_STRING;
}
