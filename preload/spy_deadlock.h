/* spy_deadlock.h: the locks each thread holds and the one it waits for,
 * published where every thread can read them, and the live deadlock check
 * built on that: when a thread is about to block on a lock, it follows the
 * wait-for chain (lock -> holder -> the lock that holder waits for -> ...)
 * and, if the chain comes back to itself, the deadlock is reported at once
 * and on_deadlock= is obeyed.
 * Runs inside lock hooks with the guard held: no allocation, no lock (the
 * tables are written only by their own thread and read racily by others;
 * a cycle is confirmed twice before it is reported), no interposed call.
 */
#ifndef SPY_DEADLOCK_H
#define SPY_DEADLOCK_H

#include <stdint.h>

#define SPY_LOCK_THREADS 512 /* threads tracked at once; others are not */
#define SPY_LOCK_HELD 64     /* locks listed per thread; more are counted */

/* Or'ed into the type of a held or awaited lock that does not say who
 * holds it (an OpenMP lock), unlike a pthread mutex, whose owner field is
 * then never read. Never written to the trace. */
#define SPY_LOCK_UNOWNED (1u << 16)

/* The exit status of a program ended by on_deadlock=abort. */
#define SPY_DEADLOCK_STATUS 86

struct spy_held_lock {
	uintptr_t lock;
	uint32_t stack;     /* where it was taken */
	uint32_t type;      /* trace_lock_type */
};

struct spy_lock_thread {
	int tid;            /* 0: free slot */
	int pid;            /* the process that claimed it (fork) */
	uintptr_t self;     /* its pthread_t: a join waits for it to end */
	uintptr_t wait_lock;        /* 0 when not blocked in a lock call */
	uint32_t wait_type, wait_stack;
	uint64_t wait_since;        /* CLOCK_MONOTONIC ns */
	uint64_t seq;               /* bumped whenever it starts or stops waiting */
	uint32_t n_held;            /* may exceed SPY_LOCK_HELD */
	uint32_t partial;           /* 1: the table may miss locks it holds */
	struct spy_held_lock held[SPY_LOCK_HELD];
};

/* Writes, once, a note that a thread held more locks than are listed. */
void spy_lock_note_full(void);

extern __thread struct spy_lock_thread *spy_lock_me
	__attribute__((tls_model("initial-exec")));

/* The calling thread's slot, claimed on first use; NULL when every slot is
 * taken (the thread then takes no part in deadlock detection). */
struct spy_lock_thread *spy_lock_slot_claim(void);

static inline struct spy_lock_thread *spy_lock_self(int pid)
{
	struct spy_lock_thread *me = spy_lock_me;
	if (__builtin_expect(me != 0 && me->pid == pid, 1))
		return me;
	return spy_lock_slot_claim();
}

/* The calling thread now holds lock (taken as type). Cannot fail: past
 * SPY_LOCK_HELD the lock is counted, not listed, and a note says so once. */
static inline void spy_lock_held_push(struct spy_lock_thread *me,
				      const void *lock, unsigned type,
				      uint32_t stack)
{
	uint32_t n = me->n_held;
	if (__builtin_expect(n < SPY_LOCK_HELD, 1)) {
		me->held[n].stack = stack;
		me->held[n].type = type;
		__atomic_store_n(&me->held[n].lock, (uintptr_t)lock,
				 __ATOMIC_RELAXED);
	} else {
		/* pops shift the list: past here it is no longer exact */
		me->partial = 1;
		spy_lock_note_full();
	}
	__atomic_store_n(&me->n_held, n + 1, __ATOMIC_RELEASE);
}

/* The calling thread is about to release lock: its latest entry goes. */
static inline void spy_lock_held_pop(struct spy_lock_thread *me,
				     const void *lock)
{
	uint32_t n = me->n_held;
	if (!n)
		return;
	/* Most often the latest lock goes first. */
	if (__builtin_expect(n <= SPY_LOCK_HELD &&
			     me->held[n - 1].lock == (uintptr_t)lock, 1)) {
		__atomic_store_n(&me->n_held, n - 1, __ATOMIC_RELEASE);
		return;
	}
	uint32_t listed = n < SPY_LOCK_HELD ? n : SPY_LOCK_HELD;
	for (uint32_t i = listed; i-- > 0;) {
		if (me->held[i].lock != (uintptr_t)lock)
			continue;
		for (uint32_t j = i; j + 1 < listed; j++) {
			me->held[j].stack = me->held[j + 1].stack;
			me->held[j].type = me->held[j + 1].type;
			__atomic_store_n(&me->held[j].lock, me->held[j + 1].lock,
					 __ATOMIC_RELAXED);
		}
		__atomic_store_n(&me->n_held, n - 1, __ATOMIC_RELEASE);
		return;
	}
	if (n > SPY_LOCK_HELD) /* one of the unlisted ones */
		__atomic_store_n(&me->n_held, n - 1, __ATOMIC_RELEASE);
}

/* Semaphores have no owner: whether one is held, and by whom, is what its
 * waits and posts say. A process-wide table follows each semaphore: who
 * took it last (0 after a post), whether one thread has taken and then
 * posted it, and whether it ever did what a lock does not (taken again
 * before a post, posted by a thread that had not taken it). The live
 * check only counts a semaphore as held while it still looks like a lock
 * (spy_deadlock.c). A table that is full leaves new semaphores out. */
void spy_sem_taken(const void *sem, int tid);
void spy_sem_given(const void *sem, int tid);
/* sem_init / sem_destroy: a new semaphore at that address. */
void spy_sem_reset(const void *sem);
/* 1 if tid took sem last and has not posted it since (0 as well when
 * the table does not know sem). */
int spy_sem_taken_by(const void *sem, int tid);

/* 1 if the calling thread holds lock (as listed). */
int spy_lock_holds(const struct spy_lock_thread *me, const void *lock);

/* 1 if me (may be NULL) lists every lock its thread holds: it has a slot,
 * never held more than SPY_LOCK_HELD at once and took none while it had
 * no slot. Only then does "not listed" mean "not held". */
static inline int spy_lock_table_whole(const struct spy_lock_thread *me)
{
	return me && !me->partial;
}

/* The tid of a thread of this process, other than skip (0: none
 * skipped), whose table lists lock as type; 0 if none does. Reads every
 * slot in use: for the rare paths only (a lock misused). */
int spy_lock_holder(const void *lock, int skip, unsigned type);

/* The calling thread is about to block on lock (type, taken at stack);
 * self_blocks says whether taking it again while holding it blocks for
 * ever (a normal mutex, a spin lock) rather than failing (errorcheck).
 * Publishes the wait and looks for a cycle; on a confirmed one writes a
 * TRACE_DEADLOCK record, prints the cycle and then either ends the process
 * (on_deadlock=abort) or returns so that the caller blocks (wait). */
void spy_deadlock_before_wait(struct spy_lock_thread *me, const void *lock,
			      unsigned type, uint32_t stack, int self_blocks);

/* The calling thread is in a condition wait on lock: whenever it wakes,
 * it must take lock back before it can do anything else, so to the others
 * it waits for lock. Published, not checked (lock is free right now). */
static inline void spy_deadlock_cond_wait(struct spy_lock_thread *me,
					  const void *lock, unsigned flags,
					  uint32_t stack, uint64_t now)
{
	me->wait_type = flags;
	me->wait_stack = stack;
	me->wait_since = now;
	__atomic_add_fetch(&me->seq, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&me->wait_lock, (uintptr_t)lock, __ATOMIC_RELEASE);
}

/* The calling thread is about to wait in pthread_join for thread (not
 * itself, still running) to end: a wait for a "lock" that thread holds
 * as long as it runs. Checked as a lock wait is. */
void spy_deadlock_before_join(struct spy_lock_thread *me, uintptr_t thread,
			      uint32_t stack);

/* The wait is over (the lock call returned). */
static inline void spy_deadlock_after_wait(struct spy_lock_thread *me)
{
	__atomic_store_n(&me->wait_lock, 0, __ATOMIC_RELEASE);
	__atomic_add_fetch(&me->seq, 1, __ATOMIC_RELEASE);
}

#endif
