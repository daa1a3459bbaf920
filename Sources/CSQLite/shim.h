#ifndef GIMLET_CSQLITE_SHIM_H
#define GIMLET_CSQLITE_SHIM_H

// SQLite 3. Debian: libsqlite3-dev.
#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro (a cast of -1): bound text and blobs are copied.
static inline sqlite3_destructor_type gimlet_sqlite_transient(void) { return SQLITE_TRANSIENT; }

#endif
