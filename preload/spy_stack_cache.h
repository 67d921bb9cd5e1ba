/* spy_stack_cache.h: the per-thread stack cache of spy_stack.c (see there),
 * here so that its hit can run inline in the malloc hooks: every malloc
 * and free takes it.
 */
#ifndef SPY_STACK_CACHE_H
#define SPY_STACK_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "spy_core.h"
#include "spy_modules.h"
#include "spy_options.h"
#include "spy_stack.h"

#define CACHE_SETS 64
#define CACHE_WAYS 4
#define CACHE_SLOTS 32

enum { ENTRY_SEEN = 1, ENTRY_LEARNT = 2 };

struct cache_entry {
	uintptr_t ra, cfa;            /* the key */
	uint32_t id;
	uint32_t generation;
	uint16_t n;                   /* slots to check */
	uint8_t state;
	/* where a caller's return address lay, and what it was: side by
	 * side, so that a short chain shares the header's cache line */
	struct {
		uintptr_t at, ra;
	} caller[CACHE_SLOTS];
};

/* A set holds up to CACHE_WAYS entries: one call site at one depth is
 * often reached through different callers (a helper called from several
 * places at the same depth, a recursion), and each chain keeps its own. */
struct stack_cache {
	struct cache_entry e[CACHE_SETS][CACHE_WAYS];
	uint8_t victim[CACHE_SETS]; /* the way replaced next */
	uint32_t unwinds;  /* full unwinds this thread has done */
	/* Learning (a step-by-step unwind) costs about ten times libunwind's
	 * fast backtrace and pays only if hits follow. Beyond a thread's
	 * first unwinds, a call site met again (or whose learnt chain of
	 * callers changed: it is learnt beside the others) is learnt on
	 * credit: every hit earns one, every ten misses one, a learning
	 * costs LEARN_COST. A program whose chains keep changing (cc1's
	 * recursive walkers: 7 events in 10 were learnt again, 1 in 7 hit)
	 * learns little until hits pay for it. */
	int64_t credit;    /* clamped to CREDIT_MAX when spent */
	uint32_t misses;   /* since the last credit they earned */
	/* The last call from the loader (loader_caller in spy_stack.c):
	 * its return address, and its stack's id in that generation. */
	uintptr_t loader_ra;
	uint32_t loader_id, loader_generation;
};

/* Changes when every id is forgotten. */
extern uint32_t spy_stack_generation;

static inline unsigned spy_stack_set_of(uintptr_t ra, uintptr_t cfa)
{
	uint64_t h = (ra ^ (cfa << 17) ^ (cfa >> 4)) * 0x9e3779b97f4a7c15u;
	return (unsigned)(h >> 58);
}

/* e's stack, if every caller's return address is still where it was. */
static inline __attribute__((always_inline)) int
spy_stack_entry_holds(const struct cache_entry *e)
{
	if (e->state != ENTRY_LEARNT ||
	    e->generation != __atomic_load_n(&spy_stack_generation, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&spy_modules_dirty, __ATOMIC_RELAXED))
		return 0;
	for (const __typeof__(e->caller[0]) *c = e->caller, *end = c + e->n;
	     c < end; c++)
		if (*(volatile const uintptr_t *)c->at != c->ra)
			return 0;
	return 1;
}

/* The cache missed (or is off): find out why, learn or unwind. */
uint32_t spy_stack_capture_miss(uintptr_t ra, uintptr_t cfa);

/* spy_stack_capture_from, its hit inline. */
static inline __attribute__((always_inline)) uint32_t
spy_stack_capture_hit(uintptr_t ra, uintptr_t cfa)
{
	struct stack_cache *c = spy_self.stack_cache;
	if (SPY_LIKELY(c != NULL)) {
		struct cache_entry *set = c->e[spy_stack_set_of(ra, cfa)];
		for (int w = 0; w < CACHE_WAYS; w++) {
			struct cache_entry *e = &set[w];
			if (e->ra == ra && e->cfa == cfa && spy_stack_entry_holds(e)) {
				c->credit++;
				return e->id;
			}
		}
	}
	return spy_stack_capture_miss(ra, cfa);
}

/* spy_stack_capture (spy_stack.h) with the hit inline. */
#define spy_stack_capture_inline() spy_stack_capture_by(spy_stack_capture_hit)

#endif
