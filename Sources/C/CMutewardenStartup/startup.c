// The daemon's allocator: jemalloc, linked into the `mutewarden` executable only.
//
// Under load glibc's malloc was the engine thread's largest single cost, most of it sorting
// freed chunks (`_int_malloc`, `unlink_chunk`, `malloc_consolidate`): a long-poll reply makes
// and frees thousands of small objects at once, more than glibc's per-thread cache holds. With
// jemalloc the same build saturated at a much higher event rate, at the same memory
// (docs/performance.md has the figures).
#define _GNU_SOURCE  // dladdr
#include "CMutewardenStartup.h"
#include <dlfcn.h>
#include <jemalloc/jemalloc.h>
#include <stddef.h>

// Read by jemalloc before its first allocation, so before any thread exists.
// - One arena, as the daemon had with glibc: its threads hardly ever allocate at the same moment,
//   each keeps a cache of its own, and every extra arena holds memory of its own.
// - Freed pages go back to the kernel within about 250 ms rather than jemalloc's default 10 s:
//   a burst (a large reply, a resync) otherwise stays in RSS, enough to take the peak over the
//   memory goal, and the shorter decay costs no throughput (docs/performance.md).
const char *malloc_conf = "narenas:1,dirty_decay_ms:250";

const char *mw_startup_allocator(void) {
    // Linked is not enough: if another library's malloc came first in the lookup order, the
    // process would allocate with that one. malloc must come from the library mallctl is in.
    Dl_info used, linked;
    if (!dladdr((void *)&malloc, &used) || !dladdr((void *)&mallctl, &linked) || used.dli_fbase != linked.dli_fbase)
        return NULL;
    const char *version = NULL;
    size_t length = sizeof version;
    if (mallctl("version", (void *)&version, &length, NULL, 0) != 0) return NULL;
    return version;
}

unsigned mw_startup_arenas(void) {
    unsigned arenas = 0;
    size_t length = sizeof arenas;
    if (mallctl("opt.narenas", &arenas, &length, NULL, 0) != 0) return 0;
    return arenas;
}
