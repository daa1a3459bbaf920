#ifndef GIMLET_CLIBPQ_SHIM_H
#define GIMLET_CLIBPQ_SHIM_H

// libpq, PostgreSQL's client library. Debian: libpq-dev (libpq 15 on Debian 12).
#include <libpq-fe.h>

#endif
