/* rec_heap.h: the heap recorder: malloc-family events into the trace, and
 * the live-block map that judges every free before the allocator sees it.
 * Called by the malloc hooks with the guard held; never allocates. Inlined
 * into the hooks, so that the stack it captures starts at the hook.
 */
#ifndef REC_HEAP_H
#define REC_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "spy_canary.h"
#include "spy_guard.h"
#include "spy_heapinfo.h"
#include "spy_heapmap.h"
#include "spy_leakscan.h"
#include "spy_modules.h"
#include "spy_options.h"
#include "spy_quarantine.h"
#include "spy_stack.h"
#include "spy_stack_cache.h"
#include "spy_writer.h"
#include "trace_encode.h"

/* The family a new block is kept with: with SPY_HEAP_CANARY when there
 * is room for a canary in its slack (*usable then set, for rec_heap_arm
 * to write it). */
static inline unsigned rec_heap_family(void *p, unsigned family, size_t size,
				       size_t *usable)
{
	if (!spy_opt.canary)
		return family;
	*usable = spy_heapmap_usable_fresh((uintptr_t)p);
	return spy_canary_room(size, *usable) ? family | SPY_HEAP_CANARY
					       : family;
}

/* Writes the canary of a new block of that family, before the map marks
 * the block as having one: a hook left half way (a signal handler's
 * longjmp) must not leave a block marked for a canary it never got,
 * which its free would then report as written past its end. */
static inline void rec_heap_arm(void *p, unsigned family, size_t size,
				size_t usable)
{
	if (family & SPY_HEAP_CANARY)
		spy_canary_set(p, size, usable);
}

/* The canary of the block at p was found changed (stack: the free or
 * realloc that found it, or 0). */
static inline void rec_heap_overrun(const void *p, size_t usable, uint32_t stack)
{
	size_t take = usable < SPY_CANARY_SHOWN ? usable : SPY_CANARY_SHOWN;
	uint8_t *w = spy_writer_begin(TRACE_HEAP_OVERRUN,
				      4 * TRACE_VARINT_MAX + SPY_CANARY_SHOWN);
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)p);
	w = trace_put_varint(w, usable);
	w = trace_put_str(w, (const char *)p + usable - take, take);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

/* A block leaving the program (free, realloc): its canary, if it has
 * one, checked. usable is its size as spy_heapmap gave it (0: unknown,
 * or its header written over). */
static inline void rec_heap_check_canary(const void *p, unsigned family,
					 size_t usable, uint32_t stack)
{
	if (SPY_UNLIKELY(family & SPY_HEAP_CANARY) && usable &&
	    !spy_canary_intact(p, usable))
		rec_heap_overrun(p, usable, stack);
}

/* A block of size bytes was handed out at p by fn (trace_alloc_fn). */
static inline __attribute__((always_inline)) void
rec_heap_alloc(unsigned fn, void *p, size_t size, size_t align)
{
	uint32_t stack = spy_stack_capture_inline();
	/* the C++ operator's mark is used up by the allocation it made */
	unsigned family = spy_alloc_family;
	spy_alloc_family = 0;
	if (SPY_UNLIKELY(spy_opt.canary)) {
		size_t usable = 0;
		family = rec_heap_family(p, family, size, &usable);
		rec_heap_arm(p, family, size, usable);
	}
	spy_heapmap_insert((uintptr_t)p, size, family);
	if (SPY_LIKELY(size < 0x10000 && !align && stack < (1u << 24)) &&
	    spy_writer_heap_short(TRACE_ALLOC_SHORT, fn, (uintptr_t)p,
				  size | (uint64_t)stack << 16,
				  2 + spy_writer_short_stack_len(stack)))
		return;
	uint8_t *w = spy_writer_begin(TRACE_ALLOC, 6 * TRACE_VARINT_MAX);
	if (w) {
		*w++ = (uint8_t)fn;
		w = spy_writer_put_addr(w, (uintptr_t)p);
		w = trace_put_varint(w, size);
		w = trace_put_varint(w, stack);
		w = trace_put_varint(w, align);
		spy_writer_end(w);
	}
}

/* A malloc-family call of size bytes failed: the call and the heap as the
 * allocator sees it (a slow path). For calloc and reallocarray, count
 * and each too (the product may not fit in size_t: size is then
 * SIZE_MAX). */
static inline __attribute__((always_inline)) void
rec_heap_alloc_failed_of(unsigned fn, size_t size, size_t count, size_t each)
{
	uint32_t stack = spy_stack_capture();
	spy_alloc_family = 0;
	uint8_t *w = spy_writer_begin(TRACE_ALLOC_FAIL, 6 * TRACE_VARINT_MAX);
	if (w) {
		w = trace_put_varint(w, fn);
		w = trace_put_varint(w, size);
		w = trace_put_varint(w, stack);
		if (fn == TRACE_FN_CALLOC || fn == TRACE_FN_REALLOCARRAY) {
			w = trace_put_varint(w, count);
			w = trace_put_varint(w, each);
		}
		spy_writer_end(w);
	}
	spy_heapinfo_write(1);
}

static inline __attribute__((always_inline)) void
rec_heap_alloc_failed(unsigned fn, size_t size)
{
	rec_heap_alloc_failed_of(fn, size, 0, 0);
}

static inline __attribute__((always_inline)) void
rec_heap_free_record(unsigned fn, void *p, uint32_t stack)
{
	if (SPY_LIKELY(stack < (1u << 24)) &&
	    spy_writer_heap_short(TRACE_FREE_SHORT, fn, (uintptr_t)p, stack,
				  spy_writer_short_stack_len(stack)))
		return;
	uint8_t *w = spy_writer_begin(TRACE_FREE, 4 * TRACE_VARINT_MAX);
	if (!w)
		return;
	*w++ = (uint8_t)fn;
	w = spy_writer_put_addr(w, (uintptr_t)p);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

/* A free-class call libspy does not pass on (trace_bad_free what). */
static inline void rec_heap_bad_free(unsigned fn, void *p, unsigned what,
				     uintptr_t base, uint32_t stack)
{
	uint8_t *w = spy_writer_begin(TRACE_BAD_FREE, 6 * TRACE_VARINT_MAX);
	if (!w)
		return;
	w = trace_put_varint(w, fn);
	w = trace_put_varint(w, (uintptr_t)p);
	w = trace_put_varint(w, stack);
	w = trace_put_varint(w, what);
	w = trace_put_varint(w, base);
	spy_writer_end(w);
}

/* A block of one family given back by another's deallocation (new[] freed
 * with delete or free, malloc'd memory with delete, ...). Passed on.
 * offset: how far into the block the pointer given was (new[]'s element
 * count in front of the elements), else 0. */
static inline void rec_heap_mismatch(unsigned fn, void *p, unsigned alloc_family,
				     unsigned free_family, uint32_t stack,
				     unsigned offset)
{
	uint8_t *w = spy_writer_begin(TRACE_MISMATCHED_FREE, 6 * TRACE_VARINT_MAX);
	if (!w)
		return;
	w = trace_put_varint(w, fn);
	w = trace_put_varint(w, (uintptr_t)p);
	w = trace_put_varint(w, alloc_family);
	w = trace_put_varint(w, free_family);
	w = trace_put_varint(w, stack);
	if (offset)
		w = trace_put_varint(w, offset);
	spy_writer_end(w);
}

/* A block's header found written over (stack: the free that found it,
 * or 0). */
static inline void rec_heap_damage(const struct spy_heap_damage *d,
				   uint32_t stack)
{
	uint8_t *w = spy_writer_begin(TRACE_HEAP_DAMAGE, 4 * TRACE_VARINT_MAX);
	if (!w)
		return;
	w = trace_put_varint(w, d->block);
	w = trace_put_varint(w, d->before);
	w = trace_put_varint(w, d->header);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

/* Judges a pointer that is not a live block of the map: records a bad
 * free and returns 0 when the allocator must not see it, or returns 1
 * when it may be a block handed out unseen (to be passed on). */
static inline int rec_heap_judge(unsigned fn, void *p, enum spy_heap_found f,
				 uint32_t stack)
{
	uintptr_t base = 0;
	int what = f == SPY_HEAP_FREED ? TRACE_BAD_DOUBLE
		: spy_leakscan_place((uintptr_t)p, &base);
	if (what < 0)
		return 1;
	rec_heap_bad_free(fn, p, (unsigned)what, base, stack);
	return 0;
}

/* A live block of family that starts 8 or 16 bytes (the size of new[]'s
 * element count: 16 for a type aligned to 16) before p (step -1) or
 * after it (step 1): its start, or 0. */
static inline uintptr_t rec_heap_cookie_away(uintptr_t p, int step,
					     unsigned family)
{
	for (uintptr_t cookie = 8; cookie <= 16; cookie += 8) {
		uintptr_t a = step < 0 ? p - cookie : p + cookie;
		unsigned f;
		if ((step > 0 || p > cookie) && spy_heapmap_live_family(a, &f) &&
		    SPY_HEAP_FAMILY(f) == family)
			return a;
	}
	return 0;
}

/* new[] of a type with a destructor keeps the element count in front of
 * the elements and hands out the first element. A delete or free of that
 * pointer (not delete[]) is a pointer that far into a new[] block: the
 * array given back the wrong way. Its block's start, or 0. */
static inline uintptr_t rec_heap_array_start(uintptr_t p, unsigned want)
{
	return want == SPY_FAMILY_NEW_ARRAY
		? 0 : rec_heap_cookie_away(p, -1, SPY_FAMILY_NEW_ARRAY);
}

/* The reverse: delete[] of an object new made (of a type with a
 * destructor) reads a count in front of it and gives back a pointer
 * that far before it. That object's start, or 0. */
static inline uintptr_t rec_heap_object_start(uintptr_t p, unsigned want)
{
	return want != SPY_FAMILY_NEW_ARRAY
		? 0 : rec_heap_cookie_away(p, 1, SPY_FAMILY_NEW);
}

/* The program frees *pp (called from ra). Records it (before the real
 * free, so that its address cannot be handed out again before the record
 * exists) and returns 1 when the caller must pass *pp to the real free
 * now, 0 when libspy keeps it: held in quarantine, or a bad free not
 * passed on. *pp becomes the start of the block when the pointer was a
 * new[] array's first element, given back by delete or free, or lay in
 * front of a new object, given back by delete[]. */
static inline __attribute__((always_inline)) int
rec_heap_free(unsigned fn, void **pp, void *ra)
{
	void *p = *pp;
	/* With the quarantine, the block's entry in the map and its header
	 * are asked for while the stack is taken: a block freed long after
	 * its malloc has both far from the cache. */
	if (spy_opt.quarantine_mb) {
		spy_heapmap_prefetch((uintptr_t)p);
		__builtin_prefetch((const char *)p - 8);
	}
	uint32_t stack = spy_stack_capture_inline();
	size_t size = 0;
	unsigned family;
	unsigned want = spy_free_family;
	spy_free_family = 0;
	unsigned cookie = 0;
	int shifted = 0;
again:;
	int guarded = spy_guard_owns(p);
	int hold = spy_opt.quarantine_mb != 0 || guarded;
	/* (each with hold a constant: the inline release of a block passed
	 * on stays as short as it can be) */
	enum spy_heap_found f = hold
		? spy_heapmap_release((uintptr_t)p, 1, &size, &family)
		: spy_heapmap_release((uintptr_t)p, 0, NULL, &family);
	if (SPY_LIKELY(f == SPY_HEAP_LIVE)) {
		rec_heap_free_record(fn, p, stack);
		/* the common case: passed on, of the family expected, with
		 * no canary and no header to check (family == want: no
		 * canary bit) */
		if (SPY_LIKELY(!hold && family == want && !spy_opt.canary))
			return 1;
		/* a held block got its size from the release; one passed on
		 * needs it only for its canary */
		if (!hold && (family & SPY_HEAP_CANARY))
			size = spy_heapmap_usable((uintptr_t)p);
		rec_heap_check_canary(p, family, size, stack);
		family = SPY_HEAP_FAMILY(family);
		if (SPY_UNLIKELY(family != want))
			rec_heap_mismatch(fn, p, family, want, stack, cookie);
		/* a size was only given for a whole header; without the
		 * quarantine, the header is checked with the canaries (the
		 * other overflow check) */
		struct spy_heap_damage dm;
		if (SPY_UNLIKELY(!size && (hold || spy_opt.canary) &&
				 spy_heapmap_damaged((uintptr_t)p, &dm))) {
			/* the allocator gets it now and reacts as it would
			 * without libspy (glibc aborts, mostly) */
			rec_heap_damage(&dm, stack);
			if (hold)
				spy_heapmap_remove((uintptr_t)p);
			return 1;
		}
		if (guarded) {
			/* its pages stay inaccessible; the map keeps it as
			 * freed, so a second free is still recognised */
			spy_guard_free(p);
			return 0;
		}
		if (!hold)
			return 1;
		if (spy_quarantine_hold(p, size))
			return 0;
		spy_heapmap_remove((uintptr_t)p);
		return 1;
	}
	/* The loader frees only blocks of its own, some made unseen (a new
	 * thread's TLS vector, allocated inside pthread_create): no search
	 * for what else the pointer could be, at every cached thread stack
	 * glibc lets go. */
	if (f == SPY_HEAP_ABSENT && spy_modules_in_loader(&ra, 1)) {
		rec_heap_free_record(fn, p, stack);
		return 1;
	}
	if (f == SPY_HEAP_ABSENT && !cookie && !shifted) {
		uintptr_t start = rec_heap_array_start((uintptr_t)p, want);
		if (start) {
			cookie = (unsigned)((uintptr_t)p - start);
			*pp = p = (void *)start;
			goto again;
		}
		start = rec_heap_object_start((uintptr_t)p, want);
		if (start) {
			shifted = 1;
			*pp = p = (void *)start;
			goto again;
		}
	}
	if (!rec_heap_judge(fn, p, f, stack))
		return 0;
	rec_heap_free_record(fn, p, stack);
	return 1;
}

/* realloc-class call on old (not NULL), before the real call: 1 when old
 * may go to the real realloc, 0 when it is a bad free (recorded; the call
 * must fail). *known is set when old was a live block of the map (it is
 * now out of the map: rec_heap_realloc puts back what survives). */
static inline int rec_heap_realloc_check(unsigned fn, void *old,
					 uint32_t stack, size_t *old_size,
					 int *known)
{
	unsigned family;
	enum spy_heap_found f =
		spy_heapmap_release((uintptr_t)old, 0, old_size, &family);
	*known = f == SPY_HEAP_LIVE;
	if (f == SPY_HEAP_LIVE) {
		rec_heap_check_canary(old, family, *old_size, stack);
		return 1;
	}
	return rec_heap_judge(fn, old, f, stack);
}

/* realloc-class call: old (may be NULL) became new (NULL when the call
 * failed, or freed old for size 0); stack and when were taken before it. */
static inline __attribute__((always_inline)) void
rec_heap_realloc(unsigned fn, void *old, void *new, size_t size,
		 uint32_t stack, uint64_t when)
{
	uint8_t *w = spy_writer_begin_at(TRACE_REALLOC, 6 * TRACE_VARINT_MAX, when);
	if (!w)
		return;
	*w++ = (uint8_t)fn;
	w = spy_writer_put_addr(w, (uintptr_t)old);
	w = spy_writer_put_addr(w, (uintptr_t)new);
	w = trace_put_varint(w, size);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

#endif
