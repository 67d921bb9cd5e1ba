/* spy_heapmap.c: the live-block map (spy_heapmap.h): the shadow for every
 * block it can hold, the hash for the rest. Runs inside the malloc hooks:
 * no allocation but mmap, no stdio, no lock the program can hold.
 */
#include "spy_heapmap.h"

#include "spy_blockhash.h"
#include "spy_canary.h"
#include "spy_guard.h"
#include "spy_real.h"
#include "spy_shadow.h"

/* The shadow's nibbles (spy_heapmap.h). */
#define NIB_LIVE SPY_NIB_LIVE
#define NIB_HELD SPY_NIB_HELD
#define FAMILY_BITS SPY_NIB_FAMILY
#define NIB_CANARY SPY_NIB_CANARY
#define LIVE_STATES SPY_NIB_LIVE_STATES
#define CANARY_STATES (0xfu << NIB_CANARY)
#define HELD_STATES (0xfu << NIB_HELD)
#define ANY_STATE 0xffffu

static inline int nib_held(unsigned v)
{
	return (v & NIB_CANARY) == NIB_HELD;
}

static inline int nib_canary(unsigned v)
{
	return (v & NIB_CANARY) == NIB_CANARY;
}

int spy_heapmap_glibc_chunks;

/* glibc keeps a block's chunk size in the word before it (the low three
 * bits are flags), and the next chunk's lowest bit says that this one is
 * in use. A program that wrote past the end of a block (a heap overflow)
 * leaves a size that fails these checks in the next block's header, and
 * glibc's malloc_usable_size would then read wherever that size points
 * (and the quarantine fill that far). A chunk not mapped on its own ends
 * inside its heap: below the program break for the main arena's (while
 * that heap is the break's), within its 64 MiB heap for another arena's. */
#define ARENA_HEAP_MAX ((uintptr_t)64 << 20)

extern void *__curbrk;

/* 1 if the span bytes from chunk stay inside the heap that a chunk of the
 * main arena (other_arena 0) or of another arena lives in. */
static inline __attribute__((always_inline)) int
within_heap(uintptr_t chunk, uint64_t span, int other_arena)
{
	if (other_arena) /* a heap aligned to its maximum size */
		return span <= ARENA_HEAP_MAX &&
		       (chunk & ~(ARENA_HEAP_MAX - 1)) ==
		       ((chunk + span - 1) & ~(ARENA_HEAP_MAX - 1));
	/* glibc's record of the break (what sbrk(0) returns, read without
	 * the call) */
	uintptr_t brk_end = (uintptr_t)__curbrk;
	if (chunk < brk_end)
		return span <= brk_end - chunk;
	return span < ARENA_HEAP_MAX;
}

static inline __attribute__((always_inline)) int
size_word_sane(uintptr_t a, uint64_t word)
{
	uint64_t size = word & ~(uint64_t)7;
	if (size < 32 || (size & 15))
		return 0;
	if (word & 2) {
		/* mapped on its own (malloc_usable_size reads no further):
		 * whole pages, from a page boundary, as glibc's free checks
		 * before it unmaps; a header written over with bytes that
		 * happen to set this bit ('B', say) is none */
		uint64_t prev = ((const uint64_t *)a)[-2];
		return !((a - 16 - prev) & 4095) && !((prev + size) & 4095) &&
		       size < ((uint64_t)1 << 46);
	}
	/* the chunk and the next one's header, which is read */
	return within_heap(a - 16, size + 16, (word & 4) != 0);
}

/* The word glibc's next chunk after the block at a keeps its size in
 * (for a block whose own size word is sane and not mapped on its own). */
static const uint64_t *next_size_word(uintptr_t a)
{
	return (const uint64_t *)(a - 8 + (((const uint64_t *)a)[-1] & ~(uint64_t)7));
}

/* What glibc's malloc_usable_size says of an in-use chunk, from its
 * header alone: the chunk less its header. */
static size_t glibc_usable(uintptr_t a)
{
	uint64_t word = ((const uint64_t *)a)[-1];
	return (size_t)((word & ~(uint64_t)7) - (word & 2 ? 16 : 8));
}

/* The size word of the chunk after the in-use block at a (own: a's size
 * word): it must say that a is in use, and be a size that chunk can have:
 * a fencepost (16 bytes, at the end of a heap), or a chunk that ends
 * within a's heap (the main arena's top chunk ends at the break).
 * A write just past a's end that changes it (a block whose size left no
 * slack) fails this. */
static inline __attribute__((always_inline)) int
next_word_sane(uintptr_t a, uint64_t own, uint64_t next)
{
	uint64_t size = next & ~(uint64_t)7;
	if (!(next & 1))
		return 0;
	if (size == 16)
		return 1;
	/* (a top chunk has no arena bit: the block's own says whose) */
	if (size < 32 || (size & 15) || (next & 2))
		return 0;
	return within_heap(a - 16 + (own & ~(uint64_t)7), size, (own & 4) != 0);
}

static int chunk_header_sane(uintptr_t a)
{
	uint64_t word = ((const uint64_t *)a)[-1];
	return size_word_sane(a, word) &&
	       ((word & 2) || next_word_sane(a, word, *next_size_word(a)));
}

/* A block's size as the allocator has it; 0 when its header was written
 * over. */
static size_t usable_size(uintptr_t a)
{
	/* a guarded block ends at the page's end rounded to 16 bytes: the
	 * bytes past its size up to there get a canary, as glibc's slack */
	if (spy_guard_owns((const void *)a))
		return (spy_guard_size((const void *)a) + 15) & ~(size_t)15;
	if (spy_heapmap_glibc_chunks)
		return chunk_header_sane(a) ? glibc_usable(a) : 0;
	return spy_real.malloc_usable_size
		? spy_real.malloc_usable_size((void *)a) : 0;
}

/* The block at b, if it was written past its end into the header of the
 * block at a: it ends right where a's chunk begins, and its canary, if it
 * has one, is no longer intact (a write that ran over the end changed
 * it). Else 0: a's header was written some other way (before a's start,
 * or through a stray pointer). */
static uintptr_t overran_into(uintptr_t b, uintptr_t a)
{
	if (!b)
		return 0;
	uint64_t word = ((const uint64_t *)b)[-1];
	if (!size_word_sane(b, word) || (word & 2))
		return 0;
	size_t usable = glibc_usable(b);
	if (b + usable + 8 != a)
		return 0;
	if (nib_canary(spy_shadow_get(b)) &&
	    spy_canary_intact((const void *)b, usable))
		return 0;
	return b;
}

int spy_heapmap_damaged(uintptr_t addr, struct spy_heap_damage *d)
{
	if (!spy_heapmap_glibc_chunks || !spy_shadow_covers(addr) ||
	    spy_guard_owns((const void *)addr))
		return 0;
	uint64_t word = ((const uint64_t *)addr)[-1];
	if (!size_word_sane(addr, word)) {
		d->block = addr;
		d->header = word;
		d->before = overran_into(addr > SPY_SHADOW_MAX_BLOCK + 16
			? spy_shadow_prev(addr - 16, addr - SPY_SHADOW_MAX_BLOCK - 16) : 0, addr);
		return 1;
	}
	const uint64_t *next = next_size_word(addr);
	if ((word & 2) || next_word_sane(addr, word, *next))
		return 0;
	/* this block's own header is whole, the next one's is not: this
	 * block was written past its end */
	d->block = (uintptr_t)(next + 1);
	d->header = *next;
	d->before = overran_into(addr, d->block);
	return 1;
}

size_t spy_heapmap_usable(uintptr_t addr)
{
	return usable_size(addr);
}

size_t spy_heapmap_usable_fresh(uintptr_t addr)
{
	if (spy_heapmap_glibc_chunks && !spy_guard_owns((const void *)addr))
		return glibc_usable(addr);
	return usable_size(addr);
}

void spy_heapmap_disarm(uintptr_t addr)
{
	if (spy_shadow_covers(addr))
		spy_shadow_change(addr, CANARY_STATES, NIB_LIVE, FAMILY_BITS);
}

struct canary_walk {
	void (*bad)(uintptr_t, size_t);
};

static void canary_granule(uintptr_t a, unsigned v, void *arg)
{
	const struct canary_walk *w = arg;
	if (!nib_canary(v))
		return;
	size_t usable = usable_size(a);
	if (usable && !spy_canary_intact((const void *)a, usable))
		w->bad(a, usable);
}

void spy_heapmap_check_canaries(void (*bad)(uintptr_t addr, size_t usable))
{
	struct canary_walk w = { bad };
	spy_shadow_each(canary_granule, &w);
}

void spy_heapmap_insert_rest(uintptr_t addr, size_t size, unsigned family)
{
	if (__builtin_expect(spy_shadow_covers(addr) && size < SPY_SHADOW_MAX_BLOCK, 1)) {
		unsigned v = (family & SPY_HEAP_CANARY ? NIB_CANARY : NIB_LIVE) |
			     (family & FAMILY_BITS);
		/* the allocator just handed the block to this thread alone */
		if (spy_heapmap_glibc_chunks)
			spy_shadow_set_owned(addr, v);
		else
			spy_shadow_change(addr, ANY_STATE, v, 0);
		return;
	}
	family &= FAMILY_BITS; /* the hash keeps no canary */
	/* an earlier block here whose free went unseen is replaced */
	if (spy_shadow_covers(addr))
		spy_shadow_change(addr, ANY_STATE, 0, 0);
	spy_blockhash_insert(addr, size, family);
}

enum spy_heap_found spy_heapmap_release_rest(uintptr_t addr, int hold,
					     size_t *size, unsigned *family,
					     unsigned was)
{
	if (__builtin_expect(!spy_shadow_covers(addr), 0))
		return spy_blockhash_release(addr, hold, size, family);
	if (was == ~0u)
		was = spy_shadow_change(addr, LIVE_STATES,
					hold ? NIB_HELD : 0,
					hold ? FAMILY_BITS : 0);
	if (!(was & (NIB_LIVE | NIB_HELD)))
		return spy_blockhash_release(addr, hold, size, family);
	*family = (was & FAMILY_BITS) | (nib_canary(was) ? SPY_HEAP_CANARY : 0);
	if (size)
		*size = usable_size(addr);
	return was & NIB_LIVE ? SPY_HEAP_LIVE : SPY_HEAP_FREED;
}

void spy_heapmap_remove(uintptr_t addr)
{
	if (!spy_shadow_covers(addr) ||
	    !spy_shadow_change(addr, ANY_STATE & ~1u, 0, 0))
		spy_blockhash_remove(addr);
}

int spy_heapmap_leave(uintptr_t addr, struct spy_heap_damage *d)
{
	int bad = spy_heapmap_damaged(addr, d);
	/* With glibc's chunks, a held block's byte is its ring's alone: no
	 * other block starts in it (spy_shadow_set_owned), and every other
	 * change of a nibble leaves a held one as it is. */
	if (!spy_heapmap_glibc_chunks || !spy_shadow_covers(addr) ||
	    !nib_held(spy_shadow_clear_owned(addr, HELD_STATES)))
		spy_heapmap_remove(addr);
	return bad;
}

int spy_heapmap_live_family(uintptr_t addr, unsigned *family)
{
	if (spy_shadow_covers(addr)) {
		unsigned v = spy_shadow_get(addr);
		if (v & NIB_LIVE) { /* live, with a canary or without */
			*family = v & FAMILY_BITS;
			return 1;
		}
		if (nib_held(v))
			return 0;
	}
	size_t size;
	return spy_blockhash_live(addr, family, &size);
}

size_t spy_heapmap_live_size(uintptr_t addr, int *canary)
{
	*canary = 0;
	if (spy_shadow_covers(addr)) {
		unsigned v = spy_shadow_get(addr);
		if (v & NIB_LIVE) {
			*canary = nib_canary(v);
			return usable_size(addr);
		}
		if (nib_held(v))
			return 0;
	}
	unsigned family;
	size_t size;
	return spy_blockhash_live(addr, &family, &size) ? size : 0;
}

int spy_heapmap_find_containing(uintptr_t addr, uintptr_t *base,
				size_t *size)
{
	if (addr > 16) {
		uintptr_t low = addr > SPY_SHADOW_MAX_BLOCK ? addr - SPY_SHADOW_MAX_BLOCK : 0;
		uintptr_t a = spy_shadow_prev((addr - 1) & ~(uintptr_t)15, low);
		if (a && (spy_shadow_get(a) & NIB_LIVE)) {
			size_t sz = usable_size(a);
			if (addr < a + sz) {
				*base = a;
				*size = sz;
				return 1;
			}
		}
	}
	return spy_blockhash_find_containing(addr, base, size);
}

struct each_ctx {
	void (*fn)(uintptr_t, size_t, int, void *);
	void *arg;
};

static void each_granule(uintptr_t a, unsigned v, void *arg)
{
	struct each_ctx *c = arg;
	if (v & (NIB_LIVE | NIB_HELD))
		c->fn(a, usable_size(a), nib_held(v), c->arg);
}

void spy_heapmap_each(void (*fn)(uintptr_t, size_t, int, void *), void *arg)
{
	struct each_ctx c = { fn, arg };
	spy_shadow_each(each_granule, &c);
	spy_blockhash_each(fn, arg);
}

size_t spy_heapmap_tables(uintptr_t (*out)[2], size_t max)
{
	size_t n = spy_shadow_tables(out, max);
	return n + spy_blockhash_tables(out + n, max - n);
}

static void count_granule(uintptr_t a, unsigned v, void *arg)
{
	(void)a;
	*(size_t *)arg += (v & NIB_LIVE) != 0;
}

static void count_hashed(uintptr_t a, size_t size, int freed, void *arg)
{
	(void)a;
	(void)size;
	*(size_t *)arg += !freed;
}

size_t spy_heapmap_live_count(void)
{
	size_t n = 0;
	spy_shadow_each(count_granule, &n);
	spy_blockhash_each(count_hashed, &n);
	return n;
}

void spy_heapmap_init(void)
{
	spy_heapmap_glibc_chunks = spy_real_malloc_is_glibc();
	spy_shadow_init();
	spy_blockhash_init();
	spy_guard_init();
}
