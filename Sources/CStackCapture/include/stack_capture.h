#ifndef GIMLET_STACK_CAPTURE_H
#define GIMLET_STACK_CAPTURE_H

#include <execinfo.h>
#include <pthread.h>

// Where a running thread is: its return addresses, taken by a signal handler
// that runs on that thread (glibc's backtrace), for the slow-request and
// request-timeout logs. One capture at a time per process: the host's
// watchdog thread is the only caller.

// Installs the handler for `signal_number`; 0 on success, else an errno.
int gimlet_stack_capture_install(int signal_number);

// Signals `thread`, waits up to `timeout_ms` for its handler, and copies up
// to `capacity` return addresses into `frames`. Returns how many (0 if the
// thread did not answer in time: a stopped process, or the signal blocked).
int gimlet_stack_capture(pthread_t thread, int signal_number, void **frames, int capacity, int timeout_ms);

#endif
