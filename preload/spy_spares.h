/* spy_spares.h: tables a thread makes for itself on first use (a cache of
 * stacks, of lock sites, an alternate signal stack) and leaves at its
 * exit for the next thread. A
 * storm of short threads then maps none, and a thread that never needs
 * one pays nothing: such tables stay out of thread-local storage, which
 * glibc zeroes for every new thread. Safe anywhere: no allocation but
 * mmap; slots are claimed with an atomic, and a spin lock held for a few
 * instructions guards the cutting of fresh tables from a slab.
 */
#ifndef SPY_SPARES_H
#define SPY_SPARES_H

#include <stddef.h>
#include <stdint.h>

#define SPY_SPARES_MAX 256

struct spy_spares {
	size_t size;                 /* bytes of one table */
	unsigned n;                  /* slots used, at most SPY_SPARES_MAX */
	/* where the next table is likely given (a hint: the slots decide) */
	unsigned top;
	void *slot[SPY_SPARES_MAX];  /* tables left by threads that ended */
	/* fresh tables are cut from slabs of several, mapped at once: the
	 * kernel counts mappings (vm.max_map_count), and one per thread for
	 * each kind of table made a program with many threads alive run out
	 * of them thousands of threads before it would without libspy */
	int lock;
	uintptr_t cut, end;          /* the current slab's uncut part */
};

/* Tables of bytes each, at most count of them kept. */
#define SPY_SPARES_INIT(bytes, count) { .size = (bytes), .n = (count) }

/* A table left by an ended thread (as it left it: the caller knows what
 * of it stays right), else a fresh one (zeroed); NULL if none can be
 * mapped. *fresh says which. */
void *spy_spares_take(struct spy_spares *s, int *fresh);

/* A thread's table, for the next thread (when no slot is free, unmapped
 * if it is whole pages, else kept: it shares a page with others). */
void spy_spares_give(struct spy_spares *s, void *table);

#endif
