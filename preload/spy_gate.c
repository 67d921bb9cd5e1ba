/* spy_gate.c: see spy_gate.h. Never allocates, never takes a lock: slots
 * are claimed with a compare-and-swap and never unmapped, so the closing
 * thread may read any of them at any time.
 */
#include "spy_gate.h"

#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spy_process.h"
#include "spy_sys.h"

/* Pages of slots: the first in the library's own data, the others mapped
 * as threads come (MAX_PAGES * PAGE_SLOTS threads alive at once). */
#define PAGE_SLOTS 1024
#define MAX_PAGES 256
#define WAIT_NS 1000000000u

static struct spy_gate_slot first_page[PAGE_SLOTS];
static struct spy_gate_slot *pages[MAX_PAGES] = { first_page };
/* Threads mapping a page of slots: not yet in one, so counted here, with
 * the full barrier of an atomic operation on both sides (rare). */
static int mapping;

/* Where the last claim found its slot: the next one looks on from there,
 * past the slots of threads still alive, instead of reading every slot
 * from the first at every thread's start. */
static unsigned hint;

static struct spy_gate_slot *take_in(struct spy_gate_slot *page)
{
	int me = spy_pid;
	unsigned from = __atomic_load_n(&hint, __ATOMIC_RELAXED);
	for (unsigned k = 0; k < PAGE_SLOTS; k++) {
		unsigned i = (from + k) % PAGE_SLOTS;
		struct spy_gate_slot *s = &page[i];
		int owner = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
		/* free: never taken, given back, or a thread's of the
		 * process this one was forked from */
		if (owner == me ||
		    !__atomic_compare_exchange_n(&s->pid, &owner, me, 0,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&s->inside, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&s->sections, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&hint, i + 1, __ATOMIC_RELAXED);
		return s;
	}
	return NULL;
}

/* A new page of slots, mapped unless tracing stopped meanwhile. */
static struct spy_gate_slot *map_page(unsigned k)
{
	__atomic_add_fetch(&mapping, 1, __ATOMIC_SEQ_CST);
	struct spy_gate_slot *page = NULL;
	if (spy_tracing && !spy_process_confined())
		page = spy_sys_mmap(PAGE_SLOTS * sizeof(*page));
	__atomic_sub_fetch(&mapping, 1, __ATOMIC_SEQ_CST);
	if (!page)
		return NULL;
	struct spy_gate_slot *none = NULL;
	if (!__atomic_compare_exchange_n(&pages[k], &none, page, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return none; /* another thread's came first; ours stays spare */
	return page;
}

struct spy_gate_slot *spy_gate_claim(struct spy_thread *t)
{
	for (unsigned k = 0; k < MAX_PAGES; k++) {
		struct spy_gate_slot *page = __atomic_load_n(&pages[k], __ATOMIC_ACQUIRE);
		if (!page && !(page = map_page(k)))
			return NULL;
		struct spy_gate_slot *s = take_in(page);
		if (s) {
			t->gate = s;
			return s;
		}
	}
	return NULL;
}

void spy_gate_release(struct spy_thread *t)
{
	struct spy_gate_slot *s = t->gate;
	if (!s)
		return;
	t->gate = NULL;
	__atomic_store_n(&s->inside, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->sections, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->pid, 0, __ATOMIC_RELEASE);
}

int spy_gate_enter(void)
{
	struct spy_thread *t = &spy_self;
	struct spy_gate_slot *s = t->gate;
	if (!s && (spy_process_confined() || !(s = spy_gate_claim(t))))
		return 0;
	__atomic_store_n(&s->sections, s->sections + 1, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return !spy_process_confined();
}

void spy_gate_leave(void)
{
	struct spy_gate_slot *s = spy_self.gate;
	if (s && s->sections > 0)
		__atomic_store_n(&s->sections, s->sections - 1, __ATOMIC_RELEASE);
}

/* Every other thread's earlier stores (its slot marked) become visible
 * here, and its later loads see tracing stopped: a full barrier on each,
 * made by the kernel. */
static void barrier_everywhere(void)
{
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 ||
	    syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0)
		return;
	/* an old kernel: a store waits in its processor's buffer for far
	 * less than this */
	uint64_t t0 = spy_now_ns();
	while (spy_now_ns() - t0 < 1000000u)
		syscall(SYS_sched_yield);
}

static int anyone_inside(const struct spy_gate_slot *mine)
{
	if (__atomic_load_n(&mapping, __ATOMIC_SEQ_CST))
		return 1;
	for (unsigned k = 0; k < MAX_PAGES; k++) {
		const struct spy_gate_slot *page =
			__atomic_load_n(&pages[k], __ATOMIC_ACQUIRE);
		if (!page)
			break;
		for (unsigned i = 0; i < PAGE_SLOTS; i++) {
			const struct spy_gate_slot *s = &page[i];
			if (s != mine &&
			    __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) == spy_pid &&
			    (__atomic_load_n(&s->inside, __ATOMIC_ACQUIRE) ||
			     __atomic_load_n(&s->sections, __ATOMIC_ACQUIRE) > 0))
				return 1;
		}
	}
	return 0;
}

void spy_gate_close(void)
{
	barrier_everywhere();
	uint64_t t0 = spy_now_ns();
	while (anyone_inside(spy_self.gate) && spy_now_ns() - t0 < WAIT_NS)
		syscall(SYS_sched_yield);
}

void spy_gate_init(void)
{
	/* cheap while the process has one thread (the kernel waits for a
	 * grace period once there are more): the barrier later is then a
	 * matter of microseconds, not of milliseconds */
	syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
}

void spy_gate_after_fork_child(void)
{
	struct spy_gate_slot *s = spy_self.gate;
	if (s)
		__atomic_store_n(&s->pid, spy_pid, __ATOMIC_RELEASE);
}
