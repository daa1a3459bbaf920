#ifndef GIMLET_CFASTCGI_SHIM_H
#define GIMLET_CFASTCGI_SHIM_H

// libfcgi's thread-safe request API (FCGX_*). Debian: libfcgi-dev.
#include <fcgiapp.h>
// Record types (FCGI_ABORT_REQUEST), to recognise an abort on the connection.
#include <fastcgi.h>

#endif
