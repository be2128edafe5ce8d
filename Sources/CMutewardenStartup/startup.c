// One malloc arena for the whole daemon, set before main and so before any thread allocates.
//
// glibc gives each thread that meets contention its own arena (up to 8 per core), and freed
// memory stays in the arena it came from. Setting M_ARENA_MAX from Swift came too late: the
// pool thread running the command had its own arena by then, and threads created later were
// dealt round-robin between it and the main arena, so which busy threads shared memory changed
// with the order threads were made in (one more thread cost 5-7 MiB at 10,000 calls).
// docs/performance.md has the figures.
#include "CMutewardenStartup.h"
#include <malloc.h>

static int arena_max_result;

__attribute__((constructor)) static void mw_single_arena(void) { arena_max_result = mallopt(M_ARENA_MAX, 1); }

int mw_startup_arena_max(void) { return arena_max_result; }
