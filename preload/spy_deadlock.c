/* spy_deadlock.c: per-thread lock tables and the live wait-for check.
 * Runs inside lock hooks (guard held) and must never allocate, take a lock
 * or call an interposed function: the tables live in static memory, each
 * written only by its own thread; other threads read them without locks.
 * Such reads can see a moment that never existed as a whole, so a cycle is
 * only reported after it has been seen, unchanged, three times over a few
 * milliseconds: threads in a real deadlock never move again.
 */
#include "spy_deadlock.h"

#include "rec_locks.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "spy_core.h"
#include "spy_options.h"
#include "spy_process.h"
#include "spy_real.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"
#include "trace_format.h"

__thread struct spy_lock_thread *spy_lock_me
	__attribute__((tls_model("initial-exec")));

static struct spy_lock_thread slots[SPY_LOCK_THREADS];
static int full_noted, slots_noted, reported;
/* Slots are taken lowest first: past this one none has ever been used,
 * and a search stops there. */
static int slots_hi;

/* 1 once the thread took a lock while it had no slot, gave up its slot
 * still holding one, or is a fork child's holding its parent's: a slot it
 * gets later does not list that lock. */
static __thread int lost_locks __attribute__((tls_model("initial-exec")));

/* 0 abort, 1 wait; -1 until on_deadlock= has been read. */
static int action = -1;

static int alive(int tid)
{
	return syscall(SYS_tgkill, spy_pid, tid, 0) == 0 || errno != ESRCH;
}

static void note_once(int *flag, const char *text)
{
	if (__atomic_exchange_n(flag, 1, __ATOMIC_RELAXED))
		return;
	spy_writer_note(1, text);
}

void spy_lock_note_full(void)
{
	note_once(&full_noted, "a thread held more than 64 locks at once: the "
		  "live deadlock check lists the first 64 only (the trace "
		  "has them all)");
}

static int read_action(void)
{
	int a = __atomic_load_n(&action, __ATOMIC_RELAXED);
	if (a >= 0)
		return a;
	if (spy_streq(spy_opt.on_deadlock, "wait")) {
		a = 1;
	} else {
		a = 0;
		if (!spy_streq(spy_opt.on_deadlock, "abort"))
			spy_error("bad value '%s' for on_deadlock (abort or "
				  "wait): using abort", spy_opt.on_deadlock);
	}
	__atomic_store_n(&action, a, __ATOMIC_RELAXED);
	return a;
}

/* A thread's slot goes back when the thread ends (a key destructor); the
 * slots of threads that ended without it (killed, or a parent's threads
 * after fork) are taken over when the table is full. */
static pthread_key_t slot_key;
static int key_state; /* 0 none, 1 being made, 2 made, 3 failed */

static void slot_release(void *arg)
{
	struct spy_lock_thread *s = arg;
	rec_lock_thread_flush();
	/* Other destructors of the thread may still give back what it
	 * holds: a slot it takes for them would not list it. */
	if (s->n_held)
		lost_locks = 1;
	s->wait_lock = 0;
	s->n_held = 0;
	if (spy_lock_me == s)
		spy_lock_me = NULL;
	__atomic_store_n(&s->tid, 0, __ATOMIC_RELEASE);
}

static void watch_exit(struct spy_lock_thread *s)
{
	int st = __atomic_load_n(&key_state, __ATOMIC_ACQUIRE);
	if (st == 0) {
		int expected = 0;
		if (__atomic_compare_exchange_n(&key_state, &expected, 1, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			__atomic_store_n(&key_state,
					 pthread_key_create(&slot_key, slot_release)
						 ? 3 : 2, __ATOMIC_RELEASE);
		st = __atomic_load_n(&key_state, __ATOMIC_ACQUIRE);
	}
	if (st == 2)
		pthread_setspecific(slot_key, s);
}

static struct spy_lock_thread *take(struct spy_lock_thread *s, int old,
				    int tid, int pid)
{
	if (!__atomic_compare_exchange_n(&s->tid, &old, tid, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED))
		return NULL;
	s->pid = pid;
	s->self = (uintptr_t)pthread_self();
	s->wait_lock = 0;
	s->n_held = 0;
	s->partial = lost_locks;
	int hi = (int)(s - slots) + 1, cur = __atomic_load_n(&slots_hi, __ATOMIC_RELAXED);
	while (cur < hi && !__atomic_compare_exchange_n(&slots_hi, &cur, hi, 1,
							__ATOMIC_RELEASE,
							__ATOMIC_RELAXED))
		;
	spy_lock_me = s;
	watch_exit(s);
	return s;
}

/* The slots to look at: every one ever taken. */
static int slots_used(void)
{
	return __atomic_load_n(&slots_hi, __ATOMIC_ACQUIRE);
}

struct spy_lock_thread *spy_lock_slot_claim(void)
{
	static unsigned cursor;
	int tid = spy_sys_gettid(), pid = spy_pid;
	struct spy_lock_thread *me = spy_lock_me, *s;
	read_action();
	if (me && me->tid == tid) {
		/* A fork child keeps its slot and what it holds. */
		me->pid = pid;
		me->self = (uintptr_t)pthread_self();
		return me;
	}
	/* A fork child's thread holds what its parent's held, which its
	 * new slot will not list. */
	if (me && me->n_held)
		lost_locks = 1;
	for (int i = 0; i < SPY_LOCK_THREADS; i++)
		if (!__atomic_load_n(&slots[i].tid, __ATOMIC_RELAXED) &&
		    (s = take(&slots[i], 0, tid, pid)))
			return s;
	/* Full: look for a thread that is gone, a few slots at a time (each
	 * look is a system call). */
	for (int k = 0; k < 32; k++) {
		unsigned i = __atomic_fetch_add(&cursor, 1, __ATOMIC_RELAXED) %
			     SPY_LOCK_THREADS;
		int old = __atomic_load_n(&slots[i].tid, __ATOMIC_RELAXED);
		if (old && (slots[i].pid != pid || !alive(old)) &&
		    (s = take(&slots[i], old, tid, pid)))
			return s;
	}
	note_once(&slots_noted, "more than 512 threads used locks at once: "
		  "the others take no part in the live deadlock check");
	lost_locks = 1;
	return NULL;
}

int spy_lock_holds(const struct spy_lock_thread *me, const void *lock)
{
	uint32_t n = me->n_held < SPY_LOCK_HELD ? me->n_held : SPY_LOCK_HELD;
	for (uint32_t i = 0; i < n; i++)
		if (me->held[i].lock == (uintptr_t)lock)
			return 1;
	return 0;
}

int spy_lock_holder(const void *lock, int skip, unsigned type)
{
	int used = slots_used();
	for (int i = 0; i < used; i++) {
		const struct spy_lock_thread *s = &slots[i];
		int tid = __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE);
		if (!tid || tid == skip || s->pid != spy_pid)
			continue;
		uint32_t n = __atomic_load_n(&s->n_held, __ATOMIC_ACQUIRE);
		if (n > SPY_LOCK_HELD)
			n = SPY_LOCK_HELD;
		for (uint32_t k = 0; k < n; k++)
			if (__atomic_load_n(&s->held[k].lock, __ATOMIC_RELAXED) ==
				    (uintptr_t)lock &&
			    s->held[k].type == type)
				return tid;
	}
	return 0;
}

/* ---- semaphores ---------------------------------------------------------- */

#define SEM_SLOTS 4096 /* a power of two */
#define SEM_PROBES 32
#define SEM_BAD (1ull << 32)    /* it did what a lock does not */
#define SEM_PROVEN (1ull << 33) /* one thread took it and posted it */

struct sem_slot {
	uintptr_t sem;   /* 0: free; never freed once set */
	uint64_t state;  /* taker's tid in the low 32 bits, SEM_BAD, SEM_PROVEN */
};

static struct sem_slot sems[SEM_SLOTS];

static struct sem_slot *sem_slot(const void *sem, int add)
{
	uintptr_t key = (uintptr_t)sem;
	unsigned h = (unsigned)((key >> 4) * 0x9e3779b1u);
	for (unsigned i = 0; i < SEM_PROBES; i++) {
		struct sem_slot *s = &sems[(h + i) & (SEM_SLOTS - 1)];
		uintptr_t cur = __atomic_load_n(&s->sem, __ATOMIC_ACQUIRE);
		if (cur == key)
			return s;
		if (cur)
			continue;
		if (!add)
			return NULL;
		uintptr_t zero = 0;
		if (__atomic_compare_exchange_n(&s->sem, &zero, key, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ||
		    zero == key)
			return s;
	}
	return NULL;
}

/* A successful wait by tid. Taken while someone's take was not posted
 * yet: it lets more than one thread in, or it is a signal. */
void spy_sem_taken(const void *sem, int tid)
{
	struct sem_slot *s = sem_slot(sem, 1);
	if (!s)
		return;
	uint64_t old = __atomic_load_n(&s->state, __ATOMIC_RELAXED), new;
	do {
		new = (old & ~0xffffffffull) | (uint32_t)tid;
		if ((uint32_t)old)
			new |= SEM_BAD;
	} while (!__atomic_compare_exchange_n(&s->state, &old, new, 1,
					      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
}

/* A post by tid (before the real one). By a thread that had not taken
 * it: a signal. */
void spy_sem_given(const void *sem, int tid)
{
	struct sem_slot *s = sem_slot(sem, 1);
	if (!s)
		return;
	uint64_t old = __atomic_load_n(&s->state, __ATOMIC_RELAXED), new;
	do {
		new = old & ~0xffffffffull;
		new |= (uint32_t)old == (uint32_t)tid ? SEM_PROVEN : SEM_BAD;
	} while (!__atomic_compare_exchange_n(&s->state, &old, new, 1,
					      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
}

void spy_sem_reset(const void *sem)
{
	struct sem_slot *s = sem_slot(sem, 0);
	if (s)
		__atomic_store_n(&s->state, 0, __ATOMIC_RELEASE);
}

int spy_sem_taken_by(const void *sem, int tid)
{
	struct sem_slot *s = sem_slot(sem, 0);
	return s && (uint32_t)__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) ==
			    (uint32_t)tid;
}

/* 1 if tid holds sem and sem has behaved like a lock so far. */
static int sem_held_by(uintptr_t sem, int tid)
{
	struct sem_slot *s = sem_slot((const void *)sem, 0);
	if (!s)
		return 0;
	uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
	return !(st & SEM_BAD) && (st & SEM_PROVEN) &&
	       (uint32_t)st == (uint32_t)tid;
}

/* ---- the wait-for search ------------------------------------------------- */

#define MAX_CYCLE 32

struct cycle {
	int n;
	struct spy_lock_thread *t[MAX_CYCLE]; /* t[i] waits for lock[i] */
	uintptr_t lock[MAX_CYCLE];            /* held by t[i+1] (t[0] at the end) */
	uint64_t seq[MAX_CYCLE];
};

/* Holding as held_type blocks a request for want_type, except read
 * against read (glibc's rwlocks prefer readers by default). */
static int conflicts(unsigned want_type, unsigned held_type)
{
	return !(want_type == TRACE_LOCK_READ && held_type == TRACE_LOCK_READ);
}

/* 1 if slot s holds lock in a mode that blocks want_type. A mutex also
 * says who owns it (glibc records the owner's tid in it, for every kind):
 * a table entry the mutex does not confirm is stale (say, unlocked by
 * another thread) and blocks nobody. The mutex is readable: a thread is
 * waiting on it, or holds it. */
static int blocks(const struct spy_lock_thread *s, uintptr_t lock,
		  unsigned want_type)
{
	/* a join waits for the thread itself */
	if (want_type == TRACE_LOCK_JOIN)
		return __atomic_load_n(&s->self, __ATOMIC_RELAXED) == lock;
	uint32_t n = __atomic_load_n(&s->n_held, __ATOMIC_ACQUIRE);
	if (n > SPY_LOCK_HELD)
		n = SPY_LOCK_HELD;
	for (uint32_t i = 0; i < n; i++) {
		if (__atomic_load_n(&s->held[i].lock, __ATOMIC_RELAXED) != lock ||
		    !conflicts(want_type, s->held[i].type))
			continue;
		if (s->held[i].type == TRACE_LOCK_MUTEX &&
		    __atomic_load_n(&((pthread_mutex_t *)lock)->__data.__owner,
				    __ATOMIC_RELAXED) != s->tid)
			continue;
		/* A semaphore entry can be stale (posted by another
		 * thread) or one that never acted as a lock. */
		if (s->held[i].type == TRACE_LOCK_SEM &&
		    !sem_held_by(lock, s->tid))
			continue;
		return 1;
	}
	return 0;
}

/* Depth-first along "waits for a lock held by": from c->t[depth], which
 * waits for c->lock[depth], to a holder; succeeds when a holder is c->t[0]. */
static int follow(struct cycle *c, int depth, unsigned char *seen)
{
	struct spy_lock_thread *w = c->t[depth];
	uintptr_t lock = c->lock[depth];
	unsigned want = w->wait_type & 15;
	if (depth + 1 >= MAX_CYCLE)
		return 0;
	int used = slots_used();
	for (int i = 0; i < used; i++) {
		struct spy_lock_thread *s = &slots[i];
		if (s == w || !__atomic_load_n(&s->tid, __ATOMIC_RELAXED) ||
		    s->pid != spy_pid || !blocks(s, lock, want))
			continue;
		if (s == c->t[0]) {
			c->n = depth + 1;
			return 1;
		}
		if (seen[i])
			continue;
		seen[i] = 1;
		uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		uintptr_t next = __atomic_load_n(&s->wait_lock, __ATOMIC_ACQUIRE);
		if (!next)
			continue;
		c->t[depth + 1] = s;
		c->lock[depth + 1] = next;
		c->seq[depth + 1] = seq;
		if (follow(c, depth + 1, seen))
			return 1;
	}
	return 0;
}

static int find_cycle(struct spy_lock_thread *me, struct cycle *c)
{
	unsigned char seen[SPY_LOCK_THREADS] = { 0 };
	seen[me - slots] = 1;
	c->n = 0;
	c->t[0] = me;
	c->lock[0] = me->wait_lock;
	c->seq[0] = me->seq;
	return follow(c, 0, seen);
}

/* The same threads still wait for the same locks, none has moved since,
 * and all of them are alive. */
static int same_cycle(const struct cycle *a, const struct cycle *b)
{
	if (a->n != b->n)
		return 0;
	for (int i = 0; i < a->n; i++) {
		if (a->t[i] != b->t[i] || a->lock[i] != b->lock[i] ||
		    a->seq[i] != __atomic_load_n(&a->t[i]->seq, __ATOMIC_ACQUIRE) ||
		    !alive(a->t[i]->tid))
			return 0;
	}
	return 1;
}

static void pause_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	syscall(SYS_nanosleep, &ts, NULL);
}

/* ---- the report ---------------------------------------------------------- */

#define REPORT_HELD 16

static void write_record(const struct cycle *c, int act)
{
	size_t max = 3 * TRACE_VARINT_MAX +
		(size_t)c->n * (6 + 3 * REPORT_HELD) * TRACE_VARINT_MAX;
	uint8_t *w = spy_writer_begin(TRACE_DEADLOCK, max);
	if (!w)
		return;
	w = trace_put_varint(w, (uint64_t)act);
	w = trace_put_varint(w, (uint64_t)c->n);
	for (int i = 0; i < c->n; i++) {
		const struct spy_lock_thread *t = c->t[i];
		uint32_t n = t->n_held < SPY_LOCK_HELD ? t->n_held : SPY_LOCK_HELD;
		if (n > REPORT_HELD)
			n = REPORT_HELD;
		w = trace_put_varint(w, (uint64_t)t->tid);
		w = trace_put_varint(w, c->lock[i]);
		w = trace_put_varint(w, t->wait_type & ~SPY_LOCK_UNOWNED);
		w = trace_put_varint(w, t->wait_stack);
		w = trace_put_varint(w, t->wait_since);
		w = trace_put_varint(w, n);
		for (uint32_t j = 0; j < n; j++) {
			w = trace_put_varint(w, t->held[j].lock);
			w = trace_put_varint(w, t->held[j].type & ~SPY_LOCK_UNOWNED);
			w = trace_put_varint(w, t->held[j].stack);
		}
	}
	spy_writer_end(w);
}

static void print_cycle(const struct cycle *c, int act)
{
	uint64_t now = spy_now_ns();
	if (c->n == 1)
		spy_error("deadlock: thread %d waits for lock %p, which it "
			  "holds itself: it can never go on",
			  c->t[0]->tid, (void *)c->lock[0]);
	else
		spy_error("deadlock: %d threads wait for each other and can "
			  "never go on:", c->n);
	for (int i = 0; c->n > 1 && i < c->n; i++) {
		const struct spy_lock_thread *t = c->t[i];
		uint64_t ms = now > t->wait_since ? (now - t->wait_since) / 1000000 : 0;
		if ((t->wait_type & 15) == TRACE_LOCK_JOIN) {
			spy_error("  thread %d waits in pthread_join for thread "
				  "%d to end since %lu ms", t->tid,
				  c->t[(i + 1) % c->n]->tid, (unsigned long)ms);
			continue;
		}
		spy_error("  thread %d waits for lock %p%s (held by thread "
			  "%d) since %lu ms", t->tid, (void *)c->lock[i],
			  (t->wait_type >> 4) == TRACE_LOCK_COND
				  ? " to return from a condition wait" : "",
			  c->t[(i + 1) % c->n]->tid, (unsigned long)ms);
	}
	if (act == 0)
		spy_error("deadlock: ending the program with status %d "
			  "(on_deadlock=abort); `analyze deadlock %s` shows "
			  "where each lock was taken", SPY_DEADLOCK_STATUS,
			  spy_writer_path());
	else
		spy_error("deadlock: the program is left waiting "
			  "(on_deadlock=wait); `analyze deadlock %s` shows "
			  "where each lock was taken", spy_writer_path());
}

void spy_deadlock_before_wait(struct spy_lock_thread *me, const void *lock,
			      unsigned type, uint32_t stack, int self_blocks)
{
	me->wait_type = type;
	me->wait_stack = stack;
	me->wait_since = spy_now_ns();
	__atomic_add_fetch(&me->seq, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&me->wait_lock, (uintptr_t)lock, __ATOMIC_RELEASE);
	/* Publish the wait before reading anyone else's: of two threads
	 * closing a cycle together, at least one sees the other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	struct cycle c;
	int mine = spy_lock_holds(me, lock);
	if (mine && type == TRACE_LOCK_MUTEX &&
	    __atomic_load_n(&((const pthread_mutex_t *)lock)->__data.__owner,
			    __ATOMIC_RELAXED) != me->tid)
		mine = 0; /* a stale entry: someone else unlocked it */
	if (mine) {
		if (!self_blocks)
			return;
		c.n = 1;
		c.t[0] = me;
		c.lock[0] = (uintptr_t)lock;
		c.seq[0] = me->seq;
	} else {
		if (!find_cycle(me, &c))
			return;
		for (int i = 0; i < 2; i++) {
			pause_ms(2);
			struct cycle again;
			if (!find_cycle(me, &again) || !same_cycle(&c, &again))
				return;
		}
	}
	if (__atomic_exchange_n(&reported, 1, __ATOMIC_ACQ_REL))
		return;
	int act = read_action();
	write_record(&c, act);
	print_cycle(&c, act);
	if (act == 0) {
		spy_process_finish(TRACE_EXIT_UNDERSCORE, SPY_DEADLOCK_STATUS);
		spy_real._exit(SPY_DEADLOCK_STATUS);
	}
}

void spy_deadlock_before_join(struct spy_lock_thread *me, uintptr_t thread,
			      uint32_t stack)
{
	spy_deadlock_before_wait(me, (const void *)thread, TRACE_LOCK_JOIN,
				 stack, 0);
}
