/* spy_ownmem.h: the memory libspy maps for itself (tables, the shadow,
 * stacks for its signal handler, buffers), remembered so that the process
 * map it writes can tell the tool's memory from the program's; and the
 * memory a non-glibc allocator maps for itself. Safe anywhere: no
 * allocation, no lock (slots are claimed with an atomic).
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

/* The same for the memory a real allocator other than glibc's maps for
 * itself (jemalloc: its extents, where the program's blocks lie, and its
 * metadata). Its pointers are not the program's: the leak scan takes it
 * for no root (its stale pointers kept every lost block reachable), and
 * scans only the blocks in it that something else reaches. Forgetting
 * drops every range [p, p + len) touches: part of a range given back
 * makes the rest a root again, which can only keep a block reachable. */
void spy_allocmem_note(const void *p, size_t len);

/* Finds the code of the real allocator (whose malloc is real_malloc) when
 * it is not the C library: once, at start. These two live with the mmap
 * hook that asks them (hook_mmap.c). */
void spy_allocmem_init(const void *real_malloc);

/* 1 if pc lies in that code (then its mmap and munmap are noted here). */
int spy_allocmem_code(const void *pc);

/* The stacks of threads that ended, which glibc keeps for the next thread:
 * what their frames held is gone with them, and the leak scan takes them
 * for no root (a block whose only pointer was a local variable of a
 * thread that returned is lost, as memcheck says; it read "still
 * reachable"). A new thread on such a stack forgets it again. */
void spy_deadstack_note(const void *p, size_t len);
void spy_deadstack_forget(const void *p, size_t len);
size_t spy_deadstack_ranges(uintptr_t (*out)[2], size_t max);

void spy_allocmem_forget(const void *p, size_t len);
size_t spy_allocmem_ranges(uintptr_t (*out)[2], size_t max);

#endif
