#ifndef GIMLET_CLINUXEVENTS_SHIM_H
#define GIMLET_CLINUXEVENTS_SHIM_H

// Linux descriptor events that Glibc's Swift module leaves out: epoll and eventfd.
#include <sys/epoll.h>
#include <sys/eventfd.h>

#endif
