#ifndef CALLOCATION_COUNTER_H
#define CALLOCATION_COUNTER_H
#include <stdint.h>
/// Heap allocations (malloc, calloc, realloc, memalign family) made by this process so far.
uint64_t mw_allocation_count(void);
#endif
