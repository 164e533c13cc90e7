/* The JSON parser is public API (include/mcnn/json.h); the library's files include it here. */
#ifndef MCNN_IO_JSON_H
#define MCNN_IO_JSON_H

#include "internal.h"
#include "mcnn/json.h"

#endif
