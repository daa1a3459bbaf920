// The signal handler of stack_capture.h. Written in C: the handler may only
// do async-signal-safe work, and Swift code promises nothing of the kind.
#include "stack_capture.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define GIMLET_MAX_FRAMES 64

static void *captured[GIMLET_MAX_FRAMES];
static atomic_int captured_count;
// 0: no capture asked; 1: asked, the handler has not run; 2: done.
static atomic_int capture_state;

static void handle(int signal_number) {
    (void)signal_number;
    int saved = errno;
    int expected = 1;
    // Only a capture that was asked for, and only once: a late signal finds state 0 or 2.
    if (atomic_load(&capture_state) == 1) {
        int count = backtrace(captured, GIMLET_MAX_FRAMES);
        atomic_store(&captured_count, count);
        atomic_compare_exchange_strong(&capture_state, &expected, 2);
    }
    errno = saved;
}

int gimlet_stack_capture_install(int signal_number) {
    // backtrace() loads libgcc_s on its first call, which must not happen in a handler.
    void *warm_up[2];
    backtrace(warm_up, 2);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handle;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    return sigaction(signal_number, &action, NULL) == 0 ? 0 : errno;
}

int gimlet_stack_capture(pthread_t thread, int signal_number, void **frames, int capacity, int timeout_ms) {
    atomic_store(&captured_count, 0);
    atomic_store(&capture_state, 1);
    if (pthread_kill(thread, signal_number) != 0) {
        atomic_store(&capture_state, 0);
        return 0;
    }
    struct timespec pause = {0, 1000000};
    for (int waited = 0; waited < timeout_ms; waited++) {
        if (atomic_load(&capture_state) == 2) {
            int count = atomic_load(&captured_count);
            if (count > capacity) count = capacity;
            memcpy(frames, captured, (size_t)count * sizeof(void *));
            atomic_store(&capture_state, 0);
            return count;
        }
        nanosleep(&pause, NULL);
    }
    atomic_store(&capture_state, 0);
    return 0;
}
