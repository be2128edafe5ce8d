// What the daemon's executable allocates with (startup.c).
#ifndef CMUTEWARDEN_STARTUP_H
#define CMUTEWARDEN_STARTUP_H
// jemalloc's version, or NULL if the process's malloc is not jemalloc's.
const char *mw_startup_allocator(void);
// The arenas jemalloc was configured with (0 if it cannot say).
unsigned mw_startup_arenas(void);
#endif
