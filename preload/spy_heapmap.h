/* spy_heapmap.h: the live-block map of libspy.so: every block the malloc
 * family handed out while recording, with the family it came from, and the
 * freed blocks still held in quarantine. It lets a free be judged before
 * it reaches the allocator. Nearly every block lives in the shadow
 * (spy_shadow.h: a nibble per 16 bytes, no lock, next to its neighbours);
 * the few the shadow cannot hold, and blocks of 128 KiB and more, go to a
 * hash (spy_blockhash.h). A block's
 * size is the allocator's (malloc_usable_size): the trace has the size
 * asked for. Safe inside hooks: never allocates with the program's
 * allocator.
 */
#ifndef SPY_HEAPMAP_H
#define SPY_HEAPMAP_H

#include <stddef.h>
#include <stdint.h>

#include "spy_core.h"
#include "spy_shadow.h"

/* What a block came from (kept with it, for mismatched deallocation). */
enum spy_heap_family {
	SPY_FAMILY_MALLOC = 0,
	SPY_FAMILY_NEW = 1,
	SPY_FAMILY_NEW_ARRAY = 2,
};

/* Or'ed into a family given to spy_heapmap_insert and returned by
 * spy_heapmap_release: the block has a canary in its slack (spy_canary.h;
 * blocks in the shadow only: the hash keeps none). */
#define SPY_HEAP_CANARY 8u
#define SPY_HEAP_FAMILY(f) ((f) & 3u)

/* What spy_heapmap_release found. */
enum spy_heap_found {
	SPY_HEAP_ABSENT = 0,  /* not a block the map knows */
	SPY_HEAP_LIVE = 1,    /* a live block: now marked freed (or removed) */
	SPY_HEAP_FREED = 2,   /* already freed and held in quarantine */
};

/* The calling thread's marks of the malloc hooks (struct spy_thread,
 * spy_core.h): in the thread's record, whose address every hook has at
 * hand already. */
#define spy_in_allocator (spy_self.in_allocator)
#define spy_alloc_family (spy_self.alloc_family)
#define spy_free_family (spy_self.free_family)

/* Set up; called once at start. Registers the fork handlers. */
void spy_heapmap_init(void);

/* A shadow nibble: 0 for no block, else a state and the block's family
 * (the low two bits): LIVE | family, HELD | family (freed, in quarantine),
 * or LIVE | HELD | family for a live block with a canary in its slack. */
#define SPY_NIB_LIVE 4u
#define SPY_NIB_HELD 8u
#define SPY_NIB_FAMILY 3u
#define SPY_NIB_CANARY (SPY_NIB_LIVE | SPY_NIB_HELD)
/* every live state, of every family (a mask of states, bit n for n) */
#define SPY_NIB_LIVE_STATES (0xfu << SPY_NIB_LIVE | 0xfu << SPY_NIB_CANARY)

/* Blocks this big or bigger go to the hash: they are few (and a malloc
 * or free of one costs far more anyway), a block mapped on its own would
 * take a page of shadow to itself, and an interior pointer's block is
 * then never more than this far back in the shadow. */
#define SPY_SHADOW_MAX_BLOCK ((size_t)128 << 10)

/* 1 when the allocator is glibc's, whose chunk layout is known (set at
 * start). */
extern int spy_heapmap_glibc_chunks;

/* The out-of-line rest of spy_heapmap_insert and spy_heapmap_release
 * below; release_rest takes the state its caller found (and left) in the
 * shadow, or ~0u when it did not look. */
void spy_heapmap_insert_rest(uintptr_t addr, size_t size, unsigned family);
enum spy_heap_found spy_heapmap_release_rest(uintptr_t addr, int hold,
					     size_t *size, unsigned *family,
					     unsigned was);

/* Remembers a live block. A live entry at the same address is replaced
 * (its free was not seen). Cannot fail short of address space, when the
 * block is simply not remembered. The common case inline: every malloc
 * takes it. */
static inline __attribute__((always_inline)) void
spy_heapmap_insert(uintptr_t addr, size_t size, unsigned family)
{
	if (__builtin_expect(spy_shadow_covers(addr) &&
			     size < SPY_SHADOW_MAX_BLOCK &&
			     spy_heapmap_glibc_chunks, 1)) {
		/* the allocator just handed the block to this thread alone */
		spy_shadow_set_owned(addr, (family & SPY_HEAP_CANARY
					    ? SPY_NIB_CANARY : SPY_NIB_LIVE) |
						   (family & SPY_NIB_FAMILY));
		return;
	}
	spy_heapmap_insert_rest(addr, size, family);
}

/* A header glibc keeps just before a block, found written over. */
struct spy_heap_damage {
	uintptr_t block;   /* the block whose header it is */
	uintptr_t before;  /* the block written past its end (0: none that
			    * ran over its end into it: not known) */
	uint64_t header;   /* the size word as found */
};

/* 1 when the live block at addr has its header written over (the block
 * before it was written past its end), or the next block's (addr was);
 * d says which. Always 0 with another allocator. */
int spy_heapmap_damaged(uintptr_t addr, struct spy_heap_damage *d);

/* The allocator's usable size of the block at addr (0 if unknown, or
 * when its header was written over). */
size_t spy_heapmap_usable(uintptr_t addr);

/* The same for a block the allocator has just handed out (its header is
 * whole: cheaper). */
size_t spy_heapmap_usable_fresh(uintptr_t addr);

/* The live block at addr, if it has a canary, no longer has one (the
 * program asked for its usable size, and may use all of it). */
void spy_heapmap_disarm(uintptr_t addr);

/* Calls bad for every live block with a canary that is no longer intact
 * (at exit). */
void spy_heapmap_check_canaries(void (*bad)(uintptr_t addr, size_t usable));

/* A free of addr: a live block is marked freed when hold is 1 (it goes
 * into quarantine) or removed when hold is 0. *family and, when size is
 * not NULL, *size receive the block's (for LIVE and FREED). */
static inline __attribute__((always_inline)) enum spy_heap_found
spy_heapmap_release(uintptr_t addr, int hold, size_t *size, unsigned *family)
{
	/* the common case inline: every free of a live block */
	if (__builtin_expect(spy_shadow_covers(addr), 1)) {
		unsigned was = spy_shadow_change(addr, SPY_NIB_LIVE_STATES,
						 hold ? SPY_NIB_HELD : 0,
						 hold ? SPY_NIB_FAMILY : 0);
		if (__builtin_expect(!(was & SPY_NIB_LIVE), 0))
			return spy_heapmap_release_rest(addr, hold, size,
							family, was);
		*family = (was & SPY_NIB_FAMILY) |
			  ((was & SPY_NIB_CANARY) == SPY_NIB_CANARY
			   ? SPY_HEAP_CANARY : 0);
		if (size)
			*size = spy_heapmap_usable(addr);
		return SPY_HEAP_LIVE;
	}
	return spy_heapmap_release_rest(addr, hold, size, family, ~0u);
}

/* Forgets addr whatever its state. */
void spy_heapmap_remove(uintptr_t addr);

/* The held block at addr leaves the quarantine that held it: forgotten
 * (as by spy_heapmap_remove), after its header and the next block's are
 * checked as by spy_heapmap_damaged, whose answer it returns. */
int spy_heapmap_leave(uintptr_t addr, struct spy_heap_damage *d);

/* Asks for the memory that a later change of addr's entry touches (a
 * hint: changes nothing). */
static inline void spy_heapmap_prefetch(uintptr_t addr)
{
	const uint8_t *b;
	if (spy_shadow_covers(addr) && (b = spy_shadow_byte(addr, 0)))
		__builtin_prefetch(b, 1);
}

/* 1 and the block's family (enum spy_heap_family) if a live block starts
 * at addr; changes nothing. For error paths. */
int spy_heapmap_live_family(uintptr_t addr, unsigned *family);

/* The size of the live block that starts at addr (0: none, or its header
 * was written over); *canary is 1 when the block keeps a canary. */
size_t spy_heapmap_live_size(uintptr_t addr, int *canary);

/* 1 and the block's start and size if addr lies inside (not at the start
 * of) a live block. Slow: searches back from addr; for error paths only. */
int spy_heapmap_find_containing(uintptr_t addr, uintptr_t *base,
				size_t *size);

/* Calls fn for every entry (freed = 1 for a quarantined one). Blocks may
 * come and go meanwhile: a block reported may be freed before fn reads it,
 * and a block given back to the allocator may still be reported. */
void spy_heapmap_each(void (*fn)(uintptr_t addr, size_t size, int freed,
				 void *arg),
		      void *arg);

/* Writes the map's own tables as [start, end) pairs into out (at most max
 * of them); returns how many. */
size_t spy_heapmap_tables(uintptr_t (*out)[2], size_t max);

/* Live (not freed) blocks in the map now; racy, for sizing; walks it. */
size_t spy_heapmap_live_count(void);

#endif
