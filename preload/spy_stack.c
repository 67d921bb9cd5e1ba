/* spy_stack.c: capture and intern call stacks.
 * Runs inside hooks: no allocation (tables come from mmap), no locks. The
 * intern table is open addressing keyed by a 64-bit hash of the frames; a
 * slot is claimed with one compare-and-swap, so threads never wait on each
 * other except for the instant between a claim and its id being stored.
 *
 * Unwinding is most of what an event costs, and programs allocate in loops:
 * the same call site, at the same stack depth, with the same callers. So
 * each thread keeps a small cache keyed by the hook's return address and
 * the caller's stack pointer. An entry remembers where on the stack each
 * caller's return address lay and what it was; when all of them still hold,
 * the frames are the same ones (each frame's position follows from the one
 * below it and its code address), and the stack's id is reused without
 * unwinding. An entry is learnt with libunwind's step-by-step unwinder
 * (which gives every frame's stack pointer), or from its fast backtrace
 * where the frames' sizes are known from earlier step-by-step unwinds
 * (frame_sizes below), and never across a signal frame, whose caller is
 * not found through a return address.
 */
#include "spy_stack.h"
#include "spy_stack_cache.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include "spy_core.h"
#include "spy_heapmap.h"
#include "spy_modules.h"
#include "spy_options.h"
#include "spy_signals.h"
#include "spy_spares.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "rec_threads.h"
#include "trace_encode.h"

#define TABLE_BITS 20
#define TABLE_SIZE (1u << TABLE_BITS)
#define MAX_PROBES 64

struct slot {
	uint64_t hash; /* 0: empty */
	uint32_t id;   /* 0 until the claiming thread stores it */
	uint32_t unused;
};

static struct slot *table;
static uint32_t next_id = 1;
uint32_t spy_stack_generation = 1;

#define LEARN_COST 10
#define CREDIT_START 64
#define CREDIT_MAX 4096

/* libunwind's fast backtrace builds a per-thread frame cache of 256 KiB on
 * its first use, which a thread that lives for a few events pays for in
 * page faults, and again at exit in unmapping. A thread's first unwinds go
 * step by step (and are learnt for the cache above at once); only a thread
 * that keeps unwinding new stacks moves on to the fast path. */
#define STEPWISE_UNWINDS 256
static uintptr_t self_start, self_end;

/* Learning step by step costs about 950 instructions a frame (libunwind
 * looks up and applies each frame's rules afresh, under a lock), the fast
 * backtrace about 80. What learning needs beyond the frames is where each
 * caller's return address lies, and that follows from the frame below: a
 * frame at code address ip and stack pointer sp returns with the stack
 * pointer at sp + size(ip). So every step-by-step unwind notes each
 * frame's size by its code address, and a chain whose frames all have a
 * size noted is learnt from the fast backtrace: each return address the
 * backtrace gave must be in the stack at the place the sizes point to,
 * or nothing is learnt. A code address seen with two sizes (a frame that
 * realigns its stack or uses alloca) is never used.
 *
 * One word a slot, so that a reader never sees half an update: the code
 * address in the low 48 bits, the size in words above it, and the top bit
 * for "seen with two sizes". Open addressing, a few probes, never
 * emptied: a code address whose module went and whose place another took
 * keeps its old size, which the check against the backtrace refuses, and
 * the next step-by-step unwind marks as changing. */
#define SIZES_BITS 17
#define SIZES_SIZE (1u << SIZES_BITS)
#define SIZES_PROBES 8
#define SIZE_IP_MASK ((UINT64_C(1) << 48) - 1)
#define SIZE_MAX_WORDS 0x7fffu
#define SIZE_VARIES (UINT64_C(1) << 63)
static uint64_t *frame_sizes;

static uint32_t sizes_slot(uintptr_t ip)
{
	return (uint32_t)(((uint64_t)ip * 0x9e3779b97f4a7c15u) >> (64 - SIZES_BITS));
}

/* The size of the frame at ip in bytes, or 0 when not known for sure. */
static uintptr_t frame_size_of(uintptr_t ip)
{
	uint32_t i = sizes_slot(ip);
	for (int probe = 0; probe < SIZES_PROBES; probe++, i = (i + 1) & (SIZES_SIZE - 1)) {
		uint64_t w = __atomic_load_n(&frame_sizes[i], __ATOMIC_RELAXED);
		if (!w)
			return 0;
		if ((w & SIZE_IP_MASK) == ip)
			return w & SIZE_VARIES ? 0 : (uintptr_t)((w >> 48) & SIZE_MAX_WORDS) * 8;
	}
	return 0;
}

static void frame_size_note(uintptr_t ip, uintptr_t size)
{
	if (ip == 0 || ip > SIZE_IP_MASK || size == 0 || size % 8 ||
	    size / 8 > SIZE_MAX_WORDS)
		return;
	uint64_t want = ip | (uint64_t)(size / 8) << 48;
	uint32_t i = sizes_slot(ip);
	for (int probe = 0; probe < SIZES_PROBES; probe++, i = (i + 1) & (SIZES_SIZE - 1)) {
		uint64_t w = __atomic_load_n(&frame_sizes[i], __ATOMIC_RELAXED);
		for (;;) {
			if (w == 0) {
				if (__atomic_compare_exchange_n(&frame_sizes[i], &w, want, 0,
								__ATOMIC_RELAXED,
								__ATOMIC_RELAXED))
					return;
				continue; /* w is what another thread stored */
			}
			if ((w & SIZE_IP_MASK) != ip)
				break;
			if (w == want || (w & SIZE_VARIES))
				return;
			if (__atomic_compare_exchange_n(&frame_sizes[i], &w, w | SIZE_VARIES, 0,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				return;
		}
	}
}

void spy_stack_set_self(uintptr_t start, uintptr_t end)
{
	self_start = start;
	self_end = end;
}

/* The unwinder's code, for spy_stack_unwinder_owns. */
static uintptr_t unwinder_lo, unwinder_hi;

int spy_stack_unwinder_owns(const void *pc)
{
	return (uintptr_t)pc - unwinder_lo < unwinder_hi - unwinder_lo;
}

/* Threads inside libunwind (spy_stack.h: libunwind and fork). */
static int unwinders;
static __thread int unwinding_here
	__attribute__((tls_model("initial-exec")));
static int unwinder_locked;      /* see spy_stack_unwinder_usable */

void spy_stack_init(void)
{
	spy_modules_code_of((const void *)(uintptr_t)&unw_step, &unwinder_lo,
			    &unwinder_hi);
	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
	unw_set_cache_size(unw_local_addr_space, 1024, 0);
	table = spy_sys_mmap(TABLE_SIZE * sizeof(struct slot));
	frame_sizes = spy_sys_mmap(SIZES_SIZE * sizeof(uint64_t));
}

void spy_stack_reset(void)
{
	/* in a fork child: another thread of the parent was inside
	 * libunwind, and may have held its locks at the fork */
	if (__atomic_load_n(&unwinders, __ATOMIC_SEQ_CST) > unwinding_here)
		unwinder_locked = 1;
	unwinders = unwinding_here;
	if (table)
		spy_sys_munmap(table, TABLE_SIZE * sizeof(struct slot));
	table = spy_sys_mmap(TABLE_SIZE * sizeof(struct slot));
	next_id = 1;
	__atomic_add_fetch(&spy_stack_generation, 1, __ATOMIC_RELEASE);
}

/* Caches of threads that ended go to the next threads. What a cache holds
 * stays right for another thread: an entry is used only where every
 * return address it recorded is still in its place on the stack. */
static struct spy_spares spare_caches = SPY_SPARES_INIT(sizeof(struct stack_cache), 64);

static struct stack_cache *cache_take(void)
{
	int fresh;
	struct stack_cache *c = spy_spares_take(&spare_caches, &fresh);
	if (c) {
		c->unwinds = 0; /* a new thread unwinds step by step */
		c->credit = CREDIT_START;
		c->misses = 0;
	}
	return c;
}

void spy_stack_thread_exit(void)
{
	struct spy_thread *t = &spy_self;
	struct stack_cache *c = t->stack_cache;
	t->stack_cache = NULL;
	spy_spares_give(&spare_caches, c);
}

static uint64_t hash_frames(void *const *frames, int n)
{
	uint64_t h = 0x9e3779b97f4a7c15u ^ (uint64_t)n;
	for (int i = 0; i < n; i++) {
		h ^= (uint64_t)(uintptr_t)frames[i];
		h *= 0xff51afd7ed558ccdu;
		h ^= h >> 32;
	}
	return h ? h : 1;
}

static void write_definition(uint32_t id, void *const *frames, int n)
{
	uint8_t *p = spy_writer_begin(TRACE_STACK,
				      (size_t)(n + 2) * TRACE_VARINT_MAX);
	if (!p)
		return;
	p = trace_put_varint(p, id);
	p = trace_put_varint(p, (uint64_t)n);
	uintptr_t prev = 0;
	for (int i = 0; i < n; i++) {
		uintptr_t f = (uintptr_t)frames[i];
		if (i == 0)
			p = trace_put_varint(p, f);
		else
			p = trace_put_svarint(p, (int64_t)(f - prev));
		prev = f;
	}
	spy_writer_end(p);
}

/* The id of frames[0..n), claiming a new one if needed. */
static uint32_t intern(void *const *frames, int n)
{
	uint64_t h = hash_frames(frames, n);
	uint32_t i = (uint32_t)h & (TABLE_SIZE - 1);
	for (int probe = 0; probe < MAX_PROBES; probe++, i = (i + 1) & (TABLE_SIZE - 1)) {
		struct slot *s = &table[i];
		uint64_t cur = __atomic_load_n(&s->hash, __ATOMIC_ACQUIRE);
		if (cur == 0) {
			if (!__atomic_compare_exchange_n(&s->hash, &cur, h, 0,
							 __ATOMIC_ACQ_REL,
							 __ATOMIC_ACQUIRE)) {
				if (cur != h)
					continue;
			} else {
				uint32_t id = __atomic_fetch_add(&next_id, 1,
								 __ATOMIC_RELAXED);
				write_definition(id, frames, n);
				__atomic_store_n(&s->id, id, __ATOMIC_RELEASE);
				return id;
			}
		}
		if (cur == h) {
			uint32_t id;
			while ((id = __atomic_load_n(&s->id, __ATOMIC_ACQUIRE)) == 0)
				__builtin_ia32_pause();
			return id;
		}
	}
	return 0; /* the table is too crowded: this event goes without a stack */
}

/* Keeps the program's frames of frames[0..got) (libspy's hooks at the top
 * and main's wrapper at the bottom are not the program's business), at
 * most stack_depth of them; returns how many. */
static int program_frames(void **frames, int got)
{
	int n = 0;
	for (int i = 0; i < got && n < (int)spy_opt.stack_depth; i++) {
		uintptr_t f = (uintptr_t)frames[i];
		if (f < self_start || f >= self_end)
			frames[n++] = frames[i];
	}
	return n;
}

/* dlopen's hook cannot see the call end (the real dlopen must see the
 * program as its caller), so the map is read again at the first stack
 * taken after it: the first one without the loader's frames in it. */
static void snapshot_if_dirty(void *const *frames, int got)
{
	if (SPY_UNLIKELY(__atomic_load_n(&spy_modules_dirty, __ATOMIC_ACQUIRE)) &&
	    !spy_modules_in_loader(frames, got))
		spy_modules_snapshot();
}

uint32_t spy_stack_intern(void **frames, int got)
{
	if (!table)
		return 0;
	snapshot_if_dirty(frames, got);
	int n = program_frames(frames, got);
	if (n <= 0)
		return 0;
	return intern(frames, n);
}

/* The way of set s to fill next: an empty one, else the next in turn. */
static struct cache_entry *cache_victim(struct stack_cache *c, unsigned s)
{
	for (int w = 0; w < CACHE_WAYS; w++)
		if (!c->e[s][w].state)
			return &c->e[s][w];
	return &c->e[s][c->victim[s]++ % CACHE_WAYS];
}

/* Unwinds step by step, learning where each caller's return address is;
 * fills e and returns the id, or 0 (e left unlearnt) when the stack cannot
 * be cached. */
__attribute__((noinline))
static uint32_t learn(struct cache_entry *e, uintptr_t ra, uintptr_t cfa)
{
	void *frames[TRACE_MAX_FRAMES + SPY_STACK_SLACK];
	uintptr_t sps[TRACE_MAX_FRAMES + SPY_STACK_SLACK];
	int max = (int)spy_opt.stack_depth + SPY_STACK_SLACK, got = 0;
	int cacheable = 0;
	unw_context_t uc;
	unw_cursor_t cur;
	spy_stack_unwind_enter();
	if (unw_getcontext(&uc) < 0 || unw_init_local(&cur, &uc) < 0) {
		spy_stack_unwind_leave();
		return 0;
	}
	do {
		unw_word_t ip, sp;
		if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 ||
		    unw_get_reg(&cur, UNW_REG_SP, &sp) < 0 || ip == 0)
			break;
		if (got > 0 && unw_is_signal_frame(&cur) > 0)
			cacheable = -1; /* a frame reached through a signal */
		frames[got] = (void *)ip;
		sps[got++] = sp;
	} while (got < max && unw_step(&cur) > 0);
	spy_stack_unwind_leave();
	/* The hook's caller: the frame at the key's address and stack. */
	int first = -1;
	for (int i = 0; i < got; i++)
		if ((uintptr_t)frames[i] == ra && sps[i] == cfa) {
			first = i;
			break;
		}
	if (first >= 0 && cacheable == 0 && frame_sizes)
		for (int i = first; i + 1 < got; i++)
			frame_size_note((uintptr_t)frames[i], sps[i + 1] - sps[i]);
	if (first >= 0 && cacheable == 0 && got - first - 1 <= CACHE_SLOTS)
		cacheable = 1;
	if (cacheable == 1) {
		/* Frame i's return address was read from the word just below
		 * the stack pointer it was found with. */
		e->n = 0;
		for (int i = first + 1; i < got; i++) {
			e->caller[e->n].at = sps[i] - sizeof(uintptr_t);
			e->caller[e->n++].ra = (uintptr_t)frames[i];
		}
	}
	uint32_t id = spy_stack_intern(frames, got);
	if (cacheable == 1 && id) {
		e->id = id;
		e->generation = __atomic_load_n(&spy_stack_generation, __ATOMIC_ACQUIRE);
		e->state = ENTRY_LEARNT;
	}
	return id;
}

/* libunwind's search of a module's unwind tables takes several KiB of
 * stack. A thread with less than this left below the caller (one started
 * with PTHREAD_STACK_MIN, deep in its calls) would overflow its stack
 * inside libspy: its events get only their innermost frame instead. */
#define UNWIND_HEADROOM (24u << 10)

/* The lowest address of the calling thread's own stack (its size from
 * its attributes or the limit; a main thread without a limit counted as
 * 64 MiB), or 0 when libspy does not know its stack. */
static uintptr_t own_stack_low(const struct rec_thread_self *me)
{
	uintptr_t top = me->stack_top;
	if (!top)
		return 0;
	if (me->stack_size && me->stack_size < top)
		return top - me->stack_size;
	return top > ((uintptr_t)64 << 20) ? top - ((uintptr_t)64 << 20) : 0;
}

int spy_guard_abandoned(struct spy_thread *t, uintptr_t cfa)
{
	const struct rec_thread_self *me = &rec_thread_self;
	uintptr_t held = t->guard_cfa, lo = own_stack_low(me);
	/* only a guard taken by a hook alone (1, its frame noted) can be
	 * judged, and only on the thread's own stack (a signal handler on
	 * an alternate stack may run anywhere) */
	if (t->guard != 1 || !held || cfa < held || !lo ||
	    cfa > me->stack_top || held < lo)
		return 0;
	static int noted;
	t->guard = 0;
	t->guard_cfa = 0;
	if (t->gate) /* the cut hook's */
		__atomic_store_n(&t->gate->inside, 0, __ATOMIC_RELEASE);
	spy_in_allocator = 0; /* the cut hook may have been calling the allocator */
	if (!__atomic_exchange_n(&noted, 1, __ATOMIC_RELAXED) && spy_hook_enter()) {
		spy_writer_note(0, "a signal handler left one of libspy's hooks "
				"by a long jump (longjmp out of the handler): the "
				"event that hook was recording is missing, and its "
				"bookkeeping may be incomplete");
		spy_hook_leave();
	}
	return 1;
}

/* Room below here on a stack that is not the thread's own: a coroutine's
 * (makecontext on a malloc'd block, or on pages of its own) or a signal
 * handler's alternate stack. A block of the heap: its start is the end
 * (below it lies other data, which an overflow would silently overwrite);
 * the alternate stack: its base; else every page down to the headroom
 * must be readable (a guard page below pages of their own faults). */
static int foreign_stack_room(uintptr_t here)
{
	uintptr_t base;
	size_t size;
	if (spy_heapmap_find_containing(here, &base, &size))
		return here - base >= UNWIND_HEADROOM;
	stack_t ss;
	if (spy_sys_sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK))
		return here - (uintptr_t)ss.ss_sp >= UNWIND_HEADROOM;
	sigjmp_buf env;
	int room = 0;
	if (sigsetjmp(env, 0) == 0) {
		spy_probe_arm(&env);
		for (uintptr_t a = here & ~(uintptr_t)4095;
		     a >= (here & ~(uintptr_t)4095) - UNWIND_HEADROOM; a -= 4096)
			(void)*(volatile const char *)a;
		room = 1;
	}
	spy_probe_disarm();
	return room;
}

static int room_to_unwind(void)
{
	const struct rec_thread_self *me = &rec_thread_self;
	if (SPY_UNLIKELY(unwinder_locked || spy_in_loader_walk))
		return 0;
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	uintptr_t lo = own_stack_low(me);
	if (lo && here >= lo && here <= me->stack_top)
		return here - lo >= UNWIND_HEADROOM;
	return foreign_stack_room(here);
}

/* ---- libunwind and fork (spy_stack.h) ---------------------------------- */

void spy_stack_unwind_enter(void)
{
	unwinding_here++;
	__atomic_fetch_add(&unwinders, 1, __ATOMIC_SEQ_CST);
}

void spy_stack_unwind_leave(void)
{
	__atomic_fetch_sub(&unwinders, 1, __ATOMIC_SEQ_CST);
	unwinding_here--;
}

int spy_stack_unwinder_usable(void)
{
	return !__atomic_load_n(&unwinder_locked, __ATOMIC_RELAXED);
}

/* libunwind's own walk, every frame. Not inlined, like learn: their
 * arrays and libunwind's cursor take several KiB of stack, which the
 * cached path (and a thread short of stack) must not reserve. */
__attribute__((noinline)) static uint32_t backtrace_whole(void)
{
	void *frames[TRACE_MAX_FRAMES + SPY_STACK_SLACK];
	spy_stack_unwind_enter();
	int got = unw_backtrace(frames, (int)spy_opt.stack_depth + SPY_STACK_SLACK);
	spy_stack_unwind_leave();
	return spy_stack_intern(frames, got);
}

/* Fills e's chain from frames[0..got) of the fast backtrace when the
 * sizes of its frames are known and every caller's return address is in
 * the stack where they point (see frame_sizes); 1 if it did. Only on the
 * thread's own stack, whose ends libspy knows: a size gone wrong must
 * not lead the check to read beyond them. */
static int chain_from_sizes(struct cache_entry *e, void *const *frames, int got,
			    uintptr_t ra, uintptr_t cfa)
{
	const struct rec_thread_self *me = &rec_thread_self;
	uintptr_t top = me->stack_top, lo = own_stack_low(me);
	if (!frame_sizes || !top || !lo || cfa < lo || cfa >= top)
		return 0;
	int first = -1;
	for (int i = 0; i < got; i++)
		if ((uintptr_t)frames[i] == ra) {
			first = i;
			break;
		}
	if (first < 0 || got - first - 1 > CACHE_SLOTS)
		return 0;
	uintptr_t sp = cfa;
	int n = 0;
	for (int i = first; i + 1 < got; i++) {
		uintptr_t size = frame_size_of((uintptr_t)frames[i]);
		if (!size || size > top - sp)
			return 0;
		sp += size;
		uintptr_t at = sp - sizeof(uintptr_t);
		if (*(volatile const uintptr_t *)at != (uintptr_t)frames[i + 1])
			return 0;
		e->caller[n].at = at;
		e->caller[n++].ra = (uintptr_t)frames[i + 1];
	}
	e->n = (uint16_t)n;
	return 1;
}

/* The fast backtrace, learnt into e when chain_from_sizes can; *learnt
 * says whether it was. */
__attribute__((noinline)) static uint32_t
backtrace_learn(struct cache_entry *e, uintptr_t ra, uintptr_t cfa, int *learnt)
{
	void *frames[TRACE_MAX_FRAMES + SPY_STACK_SLACK];
	spy_stack_unwind_enter();
	int got = unw_backtrace(frames, (int)spy_opt.stack_depth + SPY_STACK_SLACK);
	spy_stack_unwind_leave();
	int chained = chain_from_sizes(e, frames, got, ra, cfa);
	uint32_t id = spy_stack_intern(frames, got);
	*learnt = chained && id;
	if (*learnt) {
		e->id = id;
		e->generation = __atomic_load_n(&spy_stack_generation, __ATOMIC_ACQUIRE);
		e->state = ENTRY_LEARNT;
	}
	return id;
}

/* The innermost frame alone, for a thread short of stack. */
static uint32_t shallow(uintptr_t ra)
{
	void *frames[1] = { (void *)ra };
	return spy_stack_intern(frames, 1);
}

/* The stack of a call from the loader: its innermost frame alone. The
 * loader calls from a few places (a thread's TLS vector is freed from one,
 * at every join when stacks are not reused), so the id of the last is
 * kept by the thread, and the intern table is not searched again. */
static uint32_t loader_caller(uintptr_t ra)
{
	struct stack_cache *c = spy_self.stack_cache;
	uint32_t gen = __atomic_load_n(&spy_stack_generation, __ATOMIC_ACQUIRE);
	if (c && c->loader_ra == ra && c->loader_generation == gen)
		return c->loader_id;
	uint32_t id = shallow(ra);
	if (c && id) {
		c->loader_ra = ra;
		c->loader_id = id;
		c->loader_generation = gen;
	}
	return id;
}

uint32_t spy_stack_capture_miss(uintptr_t ra, uintptr_t cfa)
{
	struct spy_thread *t = &spy_self;
	struct stack_cache *c = t->stack_cache;
	/* the loader's own malloc and free (dlclose frees with its lock
	 * held): libunwind, which takes a lock of its own and then the
	 * loader's, deadlocked against another thread doing the same */
	if (SPY_UNLIKELY(spy_modules_in_loader((void *const *)&ra, 1)))
		return loader_caller(ra);
	if (SPY_UNLIKELY(!spy_opt.stack_cache))
		goto unwind;
	if (!c || !table) {
		if (!table)
			return 0;
		c = t->stack_cache = cache_take();
	}
	if (!c)
		goto unwind;
	if (c->credit > CREDIT_MAX)
		c->credit = CREDIT_MAX;
	unsigned set = spy_stack_set_of(ra, cfa);
	struct cache_entry *seen = NULL;
	int keyed = 0;
	for (int w = 0; w < CACHE_WAYS; w++) {
		struct cache_entry *e = &c->e[set][w];
		if (e->ra != ra || e->cfa != cfa)
			continue;
		if (spy_stack_entry_holds(e))
			return e->id;
		keyed = 1;
		if (e->state != ENTRY_LEARNT ||
		    e->generation != __atomic_load_n(&spy_stack_generation, __ATOMIC_RELAXED))
			seen = e;
	}
	if (!room_to_unwind())
		return shallow(ra);
	if (c->unwinds >= STEPWISE_UNWINDS) {
		/* the fast backtrace learns for nothing where the frame sizes
		 * are known; where not, a key seen before is learnt step by
		 * step on credit, which notes the sizes */
		struct cache_entry *e = seen ? seen : cache_victim(c, set);
		int learnt;
		e->ra = ra;
		e->cfa = cfa;
		e->state = ENTRY_SEEN;
		uint32_t id = backtrace_learn(e, ra, cfa, &learnt);
		if (learnt)
			return id;
		if (keyed && c->credit > 0) {
			c->credit -= LEARN_COST;
			uint32_t learnt_id = learn(e, ra, cfa);
			if (learnt_id)
				return learnt_id;
		}
		if (++c->misses >= 10) {
			c->misses = 0;
			c->credit++;
		}
		return id;
	}
	if (keyed) {
		/* seen before: learn it; changed since it was learnt: learn
		 * this chain beside the others; on credit either way */
		if (c->credit > 0) {
			struct cache_entry *e = seen ? seen : cache_victim(c, set);
			c->credit -= LEARN_COST;
			e->ra = ra;
			e->cfa = cfa;
			e->state = ENTRY_SEEN;
			uint32_t id = learn(e, ra, cfa);
			if (id)
				return id;
		}
	} else {
		struct cache_entry *e = cache_victim(c, set);
		e->ra = ra;
		e->cfa = cfa;
		e->state = ENTRY_SEEN;
		if (c->unwinds < STEPWISE_UNWINDS) {
			c->unwinds++;
			uint32_t id = learn(e, ra, cfa);
			if (id)
				return id;
		}
	}
	/* a miss not learnt from: a tenth of a credit, so that learning
	 * resumes, slowly, where the call sites have changed */
	if (++c->misses >= 10) {
		c->misses = 0;
		c->credit++;
	}
unwind:
	if (!room_to_unwind())
		return shallow(ra);
	return backtrace_whole();
}

uint32_t spy_stack_capture_from(uintptr_t ra, uintptr_t cfa)
{
	return spy_stack_capture_hit(ra, cfa);
}
