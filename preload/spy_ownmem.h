/* spy_ownmem.h: the memory libspy maps for itself (tables, the shadow,
 * stacks for its signal handler, buffers), remembered so that the process
 * map it writes can tell the tool's memory from the program's. Safe
 * anywhere: no allocation, no lock (slots are claimed with an atomic).
 */
#ifndef SPY_OWNMEM_H
#define SPY_OWNMEM_H

#include <stddef.h>
#include <stdint.h>

/* [p, p + len) is libspy's from now on, or no longer. Forgetting needs
 * the same start as noting; a range that finds no free slot (4096 of
 * them) is simply not told apart. */
void spy_ownmem_note(const void *p, size_t len);
void spy_ownmem_forget(const void *p, size_t len);

/* libspy's ranges as [start, end) pairs, sorted by start, overlapping
 * ones merged; at most max. Returns how many. */
size_t spy_ownmem_ranges(uintptr_t (*out)[2], size_t max);

#endif
