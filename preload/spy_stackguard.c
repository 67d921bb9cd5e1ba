/* spy_stackguard.c: alternate signal stacks for every thread, and the
 * stack-overflow record written when a SIGSEGV hits near a thread's stack
 * limit. The observer runs in signal context on the alternate stack: only
 * async-signal-safe calls, no allocation, no lock.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "rec_threads.h"
#include "spy_core.h"
#include "spy_signals.h"
#include "spy_spares.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"
#include "trace_format.h"

/* Blocks are kept for reuse in a few slots: taking and giving back are a
 * load and an exchange each, so a storm of short threads costs no mmap. */
static struct spy_spares pool = SPY_SPARES_INIT(SPY_STACKGUARD_BLOCK, 256);

void *spy_stackguard_take(void)
{
	int fresh;
	return spy_spares_take(&pool, &fresh);
}

/* The block of an ended thread, kept for the next thread that glibc
 * starts on the same descriptor (and stack): glibc reuses a descriptor
 * only once the kernel has cleared its thread id, i.e. once the old
 * thread can take no more signals, so the block can stay its alternate
 * stack to the end and pass on without a system call either side. */
#define KEPT_SLOTS 256
static struct kept {
	void *pd;
	void *block;  /* NULL: free; the pool's take-and-give is one exchange */
} kept[KEPT_SLOTS];

static unsigned kept_slot(const void *pd)
{
	return (unsigned)(((uintptr_t)pd >> 12) * 0x9e3779b1u) % KEPT_SLOTS;
}

/* Looks a few slots on from the descriptor's own. */
static int keep_for_next(void *block)
{
	void *pd = (void *)pthread_self();
	unsigned h = kept_slot(pd);
	for (unsigned i = 0; i < 4; i++) {
		struct kept *k = &kept[(h + i) % KEPT_SLOTS];
		void *expected = NULL;
		if (__atomic_load_n(&k->block, __ATOMIC_RELAXED) ||
		    !__atomic_compare_exchange_n(&k->block, &expected, (void *)1, 0,
						 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		k->pd = pd;
		__atomic_store_n(&k->block, block, __ATOMIC_RELEASE);
		return 1;
	}
	return 0;
}

static void *kept_for_me(void)
{
	void *pd = (void *)pthread_self();
	unsigned h = kept_slot(pd);
	for (unsigned i = 0; i < 4; i++) {
		struct kept *k = &kept[(h + i) % KEPT_SLOTS];
		void *b = __atomic_load_n(&k->block, __ATOMIC_ACQUIRE);
		if (!b || b == (void *)1 || k->pd != pd)
			continue;
		if (__atomic_compare_exchange_n(&k->block, &b, NULL, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return b;
	}
	return NULL;
}

void spy_stackguard_release(void *block)
{
	/* Turn the alternate stack off first (one call that also says what
	 * it was): a signal arriving later in the thread's exit must not run
	 * on a block that another thread may own by then. The program's own
	 * alternate stack, if it set one, is put back. A block kept for the
	 * next thread on this descriptor needs none of that. */
	if (rec_thread_self.alt_sp == block && keep_for_next(block)) {
		rec_thread_self.alt_sp = NULL;
		return;
	}
	if (rec_thread_self.alt_sp == block) {
		stack_t off = { .ss_flags = SS_DISABLE }, old;
		if (spy_sys_sigaltstack(&off, &old) == 0 && old.ss_sp != block &&
		    !(old.ss_flags & SS_DISABLE))
			spy_sys_sigaltstack(&old, NULL);
		rec_thread_self.alt_sp = NULL;
	}
	spy_spares_give(&pool, block);
}

void *spy_stackguard_install(void *block)
{
	/* A new thread starts without an alternate stack (the kernel clears
	 * it for threads), so there is nothing of the program's to keep.
	 * The top of the block held the trampoline; leave it out anyway. */
	void *kept_block = kept_for_me();
	if (kept_block) {
		if (block)
			spy_stackguard_release(block);
		block = kept_block;
	}
	if (!block)
		return NULL;
	stack_t ss = { .ss_sp = block, .ss_flags = 0,
		       .ss_size = SPY_STACKGUARD_BLOCK - 256 };
	if (spy_sys_sigaltstack(&ss, NULL) == 0) {
		rec_thread_self.alt_sp = block;
		return block;
	}
	spy_stackguard_release(block);
	return NULL;
}

/* ---- stack overflow ---------------------------------------------------------- */

#define INNER 64
#define OUTER 24
#define MAX_DEPTH (16u << 20)

static uintptr_t context_sp(void *context)
{
#if defined(__x86_64__)
	return (uintptr_t)((ucontext_t *)context)->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
	return (uintptr_t)((ucontext_t *)context)->uc_mcontext.sp;
#else
	(void)context;
	return 0;
#endif
}

/* A SIGSEGV is a stack overflow when it hits next to the stack pointer, at
 * or below the bottom of the thread's stack as its limit places it. */
static int is_overflow(uintptr_t addr, uintptr_t sp, const struct rec_thread_self *me)
{
	if (!me->stack_top || !me->stack_size || !sp || addr >= me->stack_top)
		return 0;
	uintptr_t dist = addr > sp ? addr - sp : sp - addr;
	if (dist > (64u << 10))
		return 0;
	uint64_t used = me->stack_top - addr;
	uint64_t margin = me->stack_size / 8 + (64u << 10);
	return used + margin >= me->stack_size && used <= me->stack_size + (4u << 20);
}

/* The smallest cycle p such that the frames repeat with period p. */
static int find_period(const uintptr_t *ip, int n)
{
	for (int p = 1; p <= 16 && 2 * p + 1 < n; p++) {
		int ok = 1;
		for (int i = 1; i + p < n && ok; i++)
			ok = ip[i] == ip[i + p];
		if (ok)
			return p;
	}
	return 0;
}

static void on_fault(int sig, siginfo_t *info, void *context)
{
	struct rec_thread_self *me = &rec_thread_self;
	uintptr_t sp = context ? context_sp(context) : 0;
	if (sig == SIGSEGV && info && context &&
	    is_overflow((uintptr_t)info->si_addr, sp, me)) {
		uintptr_t inner_ip[INNER], inner_sp[INNER], outer[OUTER];
		int n_inner = 0;
		uint64_t depth = 0, complete = 0;
		unw_cursor_t cur;
		/* die_of took the guard once: more means the overflow came
		 * inside libspy, perhaps inside libunwind, whose lock it then
		 * holds: no frames rather than a hang */
		int walk = spy_self.guard <= 1 && spy_stack_unwinder_usable();
		if (walk)
			spy_stack_unwind_enter();
		if (walk && unw_init_local2(&cur, (unw_context_t *)context,
					    UNW_INIT_SIGNAL_FRAME) == 0) {
			for (;;) {
				unw_word_t ip = 0, fsp = 0;
				unw_get_reg(&cur, UNW_REG_IP, &ip);
				unw_get_reg(&cur, UNW_REG_SP, &fsp);
				/* The faulting instruction is not a return
				 * address: +1 so that a reader looking up
				 * address-1 lands on it. */
				if (depth == 0)
					ip++;
				if (n_inner < INNER) {
					inner_ip[n_inner] = ip;
					inner_sp[n_inner++] = fsp;
				}
				outer[depth % OUTER] = ip;
				depth++;
				int r = unw_step(&cur);
				if (r == 0)
					complete = 1;
				if (r <= 0 || depth >= MAX_DEPTH)
					break;
			}
		}
		if (walk)
			spy_stack_unwind_leave();
		int period = find_period(inner_ip, n_inner);
		uint64_t cycle_bytes = 0;
		if (period && 1 + period < n_inner && inner_sp[1 + period] > inner_sp[1])
			cycle_bytes = inner_sp[1 + period] - inner_sp[1];
		void *frames[INNER + OUTER];
		for (int i = 0; i < n_inner; i++)
			frames[i] = (void *)inner_ip[i];
		uint32_t inner_id = spy_stack_intern(frames, n_inner);
		int n_outer = 0;
		if (depth > (uint64_t)n_inner) {
			uint64_t from = depth > OUTER ? depth - OUTER : 0;
			if (from < (uint64_t)n_inner)
				from = (uint64_t)n_inner;
			for (uint64_t i = from; i < depth; i++)
				frames[n_outer++] = (void *)outer[i % OUTER];
		}
		uint32_t outer_id = n_outer ? spy_stack_intern(frames, n_outer) : 0;
		uint8_t *p = spy_writer_begin(TRACE_STACK_OVERFLOW, 13 * TRACE_VARINT_MAX);
		if (p) {
			p = trace_put_varint(p, (uint64_t)spy_sys_gettid());
			p = trace_put_varint(p, (uint64_t)(uintptr_t)info->si_addr);
			p = trace_put_varint(p, sp);
			p = trace_put_varint(p, me->stack_top);
			p = trace_put_varint(p, me->stack_size);
			p = trace_put_varint(p, me->stack_from);
			p = trace_put_varint(p, depth);
			p = trace_put_varint(p, complete);
			p = trace_put_varint(p, inner_id);
			p = trace_put_varint(p, outer_id);
			p = trace_put_varint(p, (uint64_t)period);
			p = trace_put_varint(p, cycle_bytes);
			spy_writer_end(p);
		}
	}
	rec_threads_write_totals(TRACE_THREAD_AT_EXIT);
}

int spy_stackguard_undeliverable(int sig, siginfo_t *info, void *context)
{
	struct rec_thread_self *me = &rec_thread_self;
	stack_t cur;
	if (sig != SIGSEGV || !info || !context || !me->alt_sp ||
	    spy_sys_sigaltstack(NULL, &cur) != 0 || cur.ss_sp != me->alt_sp)
		return 0;
	return is_overflow((uintptr_t)info->si_addr, context_sp(context), me);
}

int spy_stackguard_sigaltstack(const stack_t *ss, stack_t *old)
{
	struct rec_thread_self *me = &rec_thread_self;
	stack_t was;
	if (spy_sys_sigaltstack(ss, &was) != 0)
		return -1;
	int ours = me->alt_sp && was.ss_sp == me->alt_sp &&
		   !(was.ss_flags & SS_DISABLE);
	if (ours && ss)
		me->alt_sp = NULL; /* replaced: the block goes back at the end */
	if (old) {
		*old = was;
		if (ours && !(was.ss_flags & SS_ONSTACK)) {
			old->ss_sp = NULL;
			old->ss_size = 0;
			old->ss_flags = SS_DISABLE;
		}
	}
	return 0;
}

void spy_stackguard_init(void)
{
	/* The thread that starts libspy got its alternate stack from
	 * spy_signals_init just before: note it as libspy's. */
	stack_t cur;
	if (spy_sys_sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
		rec_thread_self.alt_sp = cur.ss_sp;
	spy_signals_observe_faults(on_fault);
}
