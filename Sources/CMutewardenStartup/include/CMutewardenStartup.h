// A constructor that runs before main in the daemon's executable; the one call says whether it worked.
#ifndef CMUTEWARDEN_STARTUP_H
#define CMUTEWARDEN_STARTUP_H
int mw_startup_arena_max(void);
#endif
