/* spy_qprotect.c: inaccessible inner pages of big quarantined blocks
 * (spy_qprotect.h).
 */
#include "spy_qprotect.h"

#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "spy_core.h"
#include "spy_guard.h"
#include "spy_gate.h"
#include "spy_options.h"
#include "spy_process.h"
#include "spy_signals.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "trace_format.h"

#define PAGE 4096u
/* A block costs two mprotect calls (about 8 us together here, with the
 * mapping split and merged again): at most this many blocks are protected
 * in a window of WINDOW_NS, so a program that frees big blocks by the
 * hundred thousand pays under one percent; past it, a big block is
 * checked at its filled ends only. */
#define WINDOW_NS 100000000ull
#define PER_WINDOW 100u

/* A slot: lo is 0 while free. `reported` keeps a block to one record.
 * Released slots keep their range until reused, so that a fault that
 * raced with the release is still recognised (and retried). */
struct slot {
	uintptr_t lo, hi;      /* the inaccessible pages */
	uintptr_t block;
	size_t size;
	int active;            /* 1 while the pages are inaccessible */
	int reported;
};

static struct slot slots[SPY_QPROTECT_MAX];
static unsigned next_slot;
static int enabled, ended;
static uint64_t window;
static unsigned used_in_window;
static __thread uintptr_t last_retry;

/* One more block in this window? (Threads may race on the window's
 * change: the count is only ever a little off.) */
static int within_budget(void)
{
	uint64_t w = spy_now_ns() / WINDOW_NS;
	if (__atomic_load_n(&window, __ATOMIC_RELAXED) != w) {
		__atomic_store_n(&window, w, __ATOMIC_RELAXED);
		__atomic_store_n(&used_in_window, 0, __ATOMIC_RELAXED);
	}
	return __atomic_fetch_add(&used_in_window, 1, __ATOMIC_RELAXED) < PER_WINDOW;
}

int spy_qprotect_hold(uintptr_t block, size_t size, size_t *head, size_t *tail)
{
	size_t min = (size_t)spy_opt.quarantine_protect << 10;
	if (!enabled || !min || size < min ||
	    __atomic_load_n(&ended, __ATOMIC_RELAXED))
		return 0;
	uintptr_t lo = (block + *head + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
	uintptr_t hi = (block + size - *tail) & ~(uintptr_t)(PAGE - 1);
	if (hi <= lo || !within_budget())
		return 0;
	for (unsigned n = 0; n < SPY_QPROTECT_MAX; n++) {
		unsigned i = __atomic_fetch_add(&next_slot, 1, __ATOMIC_RELAXED) %
			     SPY_QPROTECT_MAX;
		struct slot *s = &slots[i];
		int idle = 0;
		/* active doubles as the claim: 2 while being set up */
		if (!__atomic_compare_exchange_n(&s->active, &idle, 2, 0,
						 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		/* a fault handler reading lo and hi meanwhile only ever sees
		 * the old range, an empty one, or the new one */
		__atomic_store_n(&s->hi, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&s->lo, lo, __ATOMIC_RELEASE);
		s->block = block;
		s->size = size;
		s->reported = 0;
		__atomic_store_n(&s->hi, hi, __ATOMIC_RELEASE);
		if (mprotect((void *)lo, hi - lo, PROT_NONE) != 0) {
			__atomic_store_n(&s->active, 0, __ATOMIC_RELEASE);
			return 0;
		}
		__atomic_store_n(&s->active, 1, __ATOMIC_RELEASE);
		*head = lo - block;
		*tail = block + size - hi;
		return (int)i + 1;
	}
	return 0;
}

void spy_qprotect_release(int handle)
{
	if (handle <= 0)
		return;
	struct slot *s = &slots[handle - 1];
	mprotect((void *)s->lo, s->hi - s->lo, PROT_READ | PROT_WRITE);
	__atomic_store_n(&s->active, 0, __ATOMIC_RELEASE);
}

void spy_qprotect_end(void)
{
	__atomic_store_n(&ended, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < SPY_QPROTECT_MAX; i++) {
		struct slot *s = &slots[i];
		if (__atomic_load_n(&s->active, __ATOMIC_ACQUIRE) == 1)
			mprotect((void *)s->lo, s->hi - s->lo,
				 PROT_READ | PROT_WRITE);
	}
}

/* A SIGSEGV on a page this module made inaccessible: recorded (once a
 * block, and never for libspy's own reads), the pages given back, the
 * access retried. Signal context. */
static int resolve(int sig, siginfo_t *info, void *context)
{
	uintptr_t fa = (uintptr_t)info->si_addr;
	if (sig != SIGSEGV || info->si_code != SEGV_ACCERR)
		return 0;
	for (unsigned i = 0; i < SPY_QPROTECT_MAX; i++) {
		struct slot *s = &slots[i];
		uintptr_t lo = __atomic_load_n(&s->lo, __ATOMIC_ACQUIRE);
		uintptr_t hi = __atomic_load_n(&s->hi, __ATOMIC_ACQUIRE);
		if (fa < lo || fa >= hi)
			continue;
		if (__atomic_load_n(&s->active, __ATOMIC_ACQUIRE) != 1) {
			/* released while this access faulted: the pages are
			 * accessible again, so once more; a second fault at
			 * the same place is not ours */
			if (last_retry == fa)
				return 0;
			last_retry = fa;
			return 1;
		}
		last_retry = 0;
		/* The process being confined (seccomp): the confining thread
		 * makes every such page accessible before its filter goes in
		 * (spy_qprotect_end); until then the access faults again. */
		if (!spy_gate_enter() && spy_process_confined()) {
			spy_gate_leave();
			return 1;
		}
		int first = !__atomic_exchange_n(&s->reported, 1, __ATOMIC_ACQ_REL);
		/* Accessible again first: if that fails the memory is not
		 * ours any more, and the fault is the program's. */
		if (mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE) != 0) {
			spy_gate_leave();
			return 0;
		}
		if (first && !spy_self.guard && spy_state == SPY_STATE_READY &&
		    spy_tracing) {
			spy_self.guard++;
			uint32_t stack = spy_stack_capture();
			unsigned what = spy_signals_fault_access(sig, context) ==
						TRACE_ACCESS_WRITE
				? TRACE_FAULT_HELD_WRITE : TRACE_FAULT_HELD_READ;
			spy_guard_write_fault(fa, spy_signals_fault_pc(context),
					      what, s->block, s->size, stack);
			spy_self.guard--;
		}
		spy_gate_leave();
		return 1;
	}
	return 0;
}

int spy_qprotect_lift(const void *buf, size_t len, int into, uintptr_t ret)
{
	uintptr_t lo_b = (uintptr_t)buf, hi_b = lo_b + len;
	int lifted = 0;
	if (!enabled || !len || hi_b < lo_b)
		return 0;
	for (unsigned i = 0; i < SPY_QPROTECT_MAX; i++) {
		struct slot *s = &slots[i];
		if (__atomic_load_n(&s->active, __ATOMIC_ACQUIRE) != 1)
			continue;
		uintptr_t lo = __atomic_load_n(&s->lo, __ATOMIC_ACQUIRE);
		uintptr_t hi = __atomic_load_n(&s->hi, __ATOMIC_ACQUIRE);
		if (hi <= lo_b || lo >= hi_b)
			continue;
		int first = !__atomic_exchange_n(&s->reported, 1, __ATOMIC_ACQ_REL);
		if (mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE) != 0)
			continue;
		lifted++;
		if (first && spy_state == SPY_STATE_READY && spy_tracing)
			spy_guard_write_fault(lo_b > lo ? lo_b : lo, ret - 1,
					      into ? TRACE_FAULT_SYSCALL_WRITE
						   : TRACE_FAULT_SYSCALL_READ,
					      s->block, s->size,
					      spy_stack_capture());
	}
	return lifted;
}

/* The vector is the program's and may be bad itself: read under a probe
 * (at most 64 entries). */
int spy_qprotect_lift_vec(const struct iovec *iov, int cnt, int into,
			  uintptr_t ret)
{
	struct iovec copy[64];
	int n = cnt < 64 ? cnt : 64;
	volatile int ok = 0;
	sigjmp_buf env;
	if (!enabled || !iov || n <= 0)
		return 0;
	if (sigsetjmp(env, 0) == 0) {
		spy_probe_arm(&env);
		memcpy(copy, iov, (size_t)n * sizeof(*iov));
		ok = 1;
	}
	spy_probe_disarm();
	int lifted = 0;
	for (int i = 0; ok && i < n; i++)
		lifted += spy_qprotect_lift(copy[i].iov_base, copy[i].iov_len,
					    into, ret);
	return lifted;
}

int spy_qprotect_lift_msg(const struct msghdr *msg, int into, uintptr_t ret)
{
	struct msghdr m;
	volatile int ok = 0;
	sigjmp_buf env;
	if (!enabled || !msg)
		return 0;
	if (sigsetjmp(env, 0) == 0) {
		spy_probe_arm(&env);
		memcpy(&m, msg, sizeof(m));
		ok = 1;
	}
	spy_probe_disarm();
	return ok ? spy_qprotect_lift_vec(m.msg_iov, (int)m.msg_iovlen, into, ret)
		  : 0;
}

void spy_qprotect_init(void)
{
	if (spy_opt.guard || !spy_signals_manages(SIGSEGV))
		return;
	spy_signals_resolve_faults(resolve);
	enabled = 1;
}
