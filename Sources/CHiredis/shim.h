#ifndef GIMLET_CHIREDIS_SHIM_H
#define GIMLET_CHIREDIS_SHIM_H

// hiredis, the Redis client library. Debian: libhiredis-dev.
#include <hiredis/hiredis.h>

#endif
