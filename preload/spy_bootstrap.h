/* spy_bootstrap.h: a small static arena for allocations made before the
 * real allocator is known (dlsym's own calloc, mostly). Its blocks are never
 * given back; free() must recognise and ignore them.
 */
#ifndef SPY_BOOTSTRAP_H
#define SPY_BOOTSTRAP_H

#include <stddef.h>

/* A zeroed block of at least size bytes aligned to align (a power of two,
 * at most 4096), or NULL when the arena is exhausted. */
void *spy_bootstrap_alloc(size_t size, size_t align);
/* 1 if p points into the arena. */
int spy_bootstrap_owns(const void *p);
/* The usable size of an arena block (0 if p is not one). */
size_t spy_bootstrap_size(const void *p);

#endif
