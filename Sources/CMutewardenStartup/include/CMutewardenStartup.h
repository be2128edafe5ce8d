// Nothing to call: this target only runs a constructor, before main, in the daemon's executable.
#ifndef CMUTEWARDEN_STARTUP_H
#define CMUTEWARDEN_STARTUP_H
int mw_startup_arena_max(void);
#endif
