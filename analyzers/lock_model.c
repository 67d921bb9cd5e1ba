/* lock_model.c: replays a trace's lock records into locks, statistics and
 * the lock-order graph, following lockdep's rules:
 *   - an edge H -> L is added when a thread holding H attempts a blocking
 *     acquisition of L (at the LOCK_WAIT record, or at the acquisition
 *     when it did not have to wait), and undone when that attempt fails;
 *   - a trylock never adds an edge into the lock it tries (it cannot
 *     block), but once held the lock is the source of later edges;
 *   - a condition wait's return is a blocking acquisition of its mutex;
 *   - re-taking a lock already held (recursive mutex, read lock taken
 *     twice) adds nothing;
 *   - a semaphore is a lock only if, over the whole trace, it behaved like
 *     one (sem_lockish below); its other records are left out. A
 *     semaphore taken by a try is a blocking acquisition: its try is most
 *     often the fast path of one (Python's Lock.acquire tries first).
 * Each edge keeps both stacks of its first occurrence, its threads, and the
 * locks held at every occurrence (the candidate gate locks).
 */
#include "lock_model.h"

#include <stdlib.h>
#include <string.h>

#include "trace_decode.h"
#include "trace_format.h"

struct held {
	uint32_t lock;
	uint64_t addr, ts;
	uint32_t stack;
	bool read;
};

struct tstate {
	uint32_t tid;
	struct held *h;
	size_t n, cap;
	bool waiting;
	uint32_t wait_lock;
	uint32_t *added;          /* edges counted by the pending wait */
	size_t n_added, cap_added;
	size_t retry;             /* index + 1 into lm->retries */
};

struct replay {
	const struct trace_model *m;
	struct lock_model *lm;
	struct u64map cur;        /* addr -> lock index + 1 (live generation) */
	struct u64map gens;       /* addr -> generations so far */
	struct u64map edge_of;    /* edge key -> edge index + 1 */
	struct u64map blocks;     /* heap block start -> alloc event index + 1 */
	uint64_t blocks_lo, blocks_hi; /* every block seen lies in [lo, hi) */
	uint64_t *addrs;          /* sorted addresses in cur */
	size_t n_addrs, cap_addrs;
	struct u64map tindex;     /* tid -> tstate index + 1 */
	struct tstate *ts;
	size_t n_ts, cap_ts;
	uint8_t *skip;            /* events of semaphores that are no locks */
};

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	void *q = realloc(*p, ncap * size);
	if (!q)
		return -1;
	*p = q;
	*cap = ncap;
	return 0;
}

#define GROW(arr, cap, need) grow((void **)&(arr), &(cap), (need), sizeof(*(arr)))

static struct tstate *thread_state(struct replay *r, uint32_t tid)
{
	uint64_t *slot = u64map_get(&r->tindex, tid);
	if (slot)
		return &r->ts[*slot - 1];
	if (GROW(r->ts, r->cap_ts, r->n_ts + 1) < 0 ||
	    u64map_put(&r->tindex, tid, r->n_ts + 1) < 0)
		return NULL;
	struct tstate *t = &r->ts[r->n_ts++];
	*t = (struct tstate){ .tid = tid };
	return t;
}

/* ---- lock identity ------------------------------------------------------- */

static size_t addr_lower(const struct replay *r, uint64_t a)
{
	size_t lo = 0, hi = r->n_addrs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->addrs[mid] < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The address's live lock ends: the next use starts a new generation. */
static void retire(struct replay *r, uint64_t addr)
{
	if (!u64map_remove(&r->cur, addr, NULL))
		return;
	size_t i = addr_lower(r, addr);
	if (i < r->n_addrs && r->addrs[i] == addr) {
		memmove(&r->addrs[i], &r->addrs[i + 1],
			(r->n_addrs - i - 1) * sizeof(*r->addrs));
		r->n_addrs--;
	}
}

/* Every lock inside [start, start+size) ends (the memory was freed). */
static void retire_range(struct replay *r, uint64_t start, uint64_t size)
{
	size_t i = addr_lower(r, start);
	while (i < r->n_addrs && r->addrs[i] < start + size)
		retire(r, r->addrs[i]);
}

/* The heap block holding addr, found by trying the 16-byte aligned starts
 * below it (glibc's blocks are 16-aligned); 0 when none within 64 KiB. */
static uint64_t block_of(const struct replay *r, uint64_t addr)
{
	/* a lock outside every block ever seen (a global, one on a stack)
	 * is not looked for 4096 times */
	if (addr < r->blocks_lo || addr >= r->blocks_hi)
		return 0;
	uint64_t a = addr & ~(uint64_t)15;
	for (int i = 0; i < 4096 && a; i++, a -= 16) {
		uint64_t *v = u64map_get(&r->blocks, a);
		if (!v)
			continue;
		const struct trace_event *e = &r->m->events[*v - 1];
		return addr < e->a + e->c ? *v : 0;
	}
	return 0;
}

static long lock_get(struct replay *r, uint64_t addr, unsigned type,
		     const struct trace_event *e)
{
	uint64_t *slot = u64map_get(&r->cur, addr);
	struct lock_model *lm = r->lm;
	if (slot) {
		struct lock_info *l = &lm->locks[*slot - 1];
		if (type == TRACE_LOCK_READ || type == TRACE_LOCK_WRITE)
			l->type = TRACE_LOCK_RWLOCK;
		return (long)(*slot - 1);
	}
	if (GROW(lm->locks, lm->cap_locks, lm->n_locks + 1) < 0 ||
	    GROW(r->addrs, r->cap_addrs, r->n_addrs + 1) < 0)
		return -1;
	uint64_t *g = u64map_get(&r->gens, addr);
	uint64_t gen = g ? *g + 1 : 1;
	if (u64map_put(&r->gens, addr, gen) < 0 ||
	    u64map_put(&r->cur, addr, lm->n_locks + 1) < 0)
		return -1;
	size_t i = addr_lower(r, addr);
	memmove(&r->addrs[i + 1], &r->addrs[i],
		(r->n_addrs - i) * sizeof(*r->addrs));
	r->addrs[i] = addr;
	r->n_addrs++;
	struct lock_info *l = &lm->locks[lm->n_locks];
	*l = (struct lock_info){
		.addr = addr, .gen = (uint32_t)gen,
		.type = type == TRACE_LOCK_READ || type == TRACE_LOCK_WRITE
				? TRACE_LOCK_RWLOCK : type,
		.first_stack = e->stack, .first_tid = e->tid, .first_ts = e->ts,
	};
	uint64_t b = block_of(r, addr);
	if (b) {
		const struct trace_event *a = &r->m->events[b - 1];
		l->block_addr = a->a;
		l->block_size = a->c;
		l->block_stack = a->stack;
	}
	return (long)lm->n_locks++;
}

/* ---- edges --------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The distinct locks t holds other than a and b, sorted, into *out. */
static int held_set(const struct tstate *t, uint32_t a, uint32_t b,
		    uint32_t **out, size_t *n)
{
	uint32_t *v = malloc((t->n ? t->n : 1) * sizeof(*v));
	if (!v)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < t->n; i++)
		if (t->h[i].lock != a && t->h[i].lock != b)
			v[k++] = t->h[i].lock;
	qsort(v, k, sizeof(*v), cmp_u32);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (!u || v[u - 1] != v[i])
			v[u++] = v[i];
	*out = v;
	*n = u;
	return 0;
}

static void intersect(uint32_t *g, size_t *n, const uint32_t *h, size_t nh)
{
	size_t k = 0, j = 0;
	for (size_t i = 0; i < *n; i++) {
		while (j < nh && h[j] < g[i])
			j++;
		if (j < nh && h[j] == g[i])
			g[k++] = g[i];
	}
	*n = k;
}

static int edge_add(struct replay *r, struct tstate *t, const struct held *from,
		    uint32_t to, bool to_read, uint32_t to_stack, uint64_t ts)
{
	struct lock_model *lm = r->lm;
	uint64_t key = (uint64_t)from->lock << 32 | (uint64_t)to << 2 |
		       (uint64_t)from->read << 1 | (uint64_t)to_read;
	uint64_t *slot = u64map_get(&r->edge_of, key);
	uint32_t *set;
	size_t n_set;
	if (!slot && lm->n_edges >= (lm->max_edges ? lm->max_edges : LOCK_MAX_EDGES)) {
		lm->edges_dropped++;
		return 0;
	}
	if (held_set(t, from->lock, to, &set, &n_set) < 0)
		return -1;
	struct lock_edge *e;
	if (slot) {
		e = &lm->edges[*slot - 1];
		intersect(e->gates, &e->n_gates, set, n_set);
		free(set);
		if (!e->count) { /* undone before: this is a first time again */
			e->from_stack = from->stack;
			e->to_stack = to_stack;
			e->ts = ts;
		}
	} else {
		if (GROW(lm->edges, lm->cap_edges, lm->n_edges + 1) < 0 ||
		    u64map_put(&r->edge_of, key, lm->n_edges + 1) < 0) {
			free(set);
			return -1;
		}
		e = &lm->edges[lm->n_edges++];
		*e = (struct lock_edge){
			.from = from->lock, .to = to, .from_read = from->read,
			.to_read = to_read, .from_stack = from->stack,
			.to_stack = to_stack, .ts = ts, .gates = set,
			.n_gates = n_set,
		};
		/* The full held set of the first occurrence, for people. */
		e->held = malloc((t->n ? t->n : 1) * sizeof(*e->held));
		if (!e->held)
			return -1;
		for (size_t i = 0; i < t->n; i++) {
			size_t k = 0;
			while (k < e->n_held && e->held[k] != t->h[i].lock)
				k++;
			if (k == e->n_held)
				e->held[e->n_held++] = t->h[i].lock;
		}
	}
	e->count++;
	size_t k = 0;
	while (k < e->n_tids && e->tids[k] != t->tid)
		k++;
	if (k == e->n_tids && e->n_tids < LOCK_EDGE_TIDS)
		e->tids[e->n_tids++] = t->tid;
	if (t->waiting) {
		if (GROW(t->added, t->cap_added, t->n_added + 1) < 0)
			return -1;
		t->added[t->n_added++] = (uint32_t)(e - lm->edges);
	}
	return 0;
}

static bool holds(const struct tstate *t, uint32_t lock)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->h[i].lock == lock)
			return true;
	return false;
}

/* A blocking attempt on lock: an edge from every lock held (once each). */
static int attempt(struct replay *r, struct tstate *t, uint32_t lock, bool read,
		   uint32_t stack, uint64_t ts)
{
	for (size_t i = 0; i < t->n; i++) {
		bool dup = false;
		for (size_t j = 0; j < i && !dup; j++)
			dup = t->h[j].lock == t->h[i].lock;
		if (!dup && edge_add(r, t, &t->h[i], lock, read, stack, ts) < 0)
			return -1;
	}
	return 0;
}

static void undo_wait(struct replay *r, struct tstate *t)
{
	for (size_t i = 0; i < t->n_added; i++)
		if (r->lm->edges[t->added[i]].count)
			r->lm->edges[t->added[i]].count--;
	t->n_added = 0;
	t->waiting = false;
}

/* ---- retries (livelock) -------------------------------------------------- */

static struct lock_retry *retry_of(struct replay *r, struct tstate *t)
{
	struct lock_model *lm = r->lm;
	if (!t->retry) {
		void *p = realloc(lm->retries, (lm->n_retries + 1) * sizeof(*lm->retries));
		if (!p)
			return NULL;
		lm->retries = p;
		lm->retries[lm->n_retries] = (struct lock_retry){ .tid = t->tid };
		t->retry = ++lm->n_retries;
	}
	return &lm->retries[t->retry - 1];
}

static int note_attempt(struct replay *r, struct tstate *t, uint64_t ts,
			bool failed, uint32_t lock, uint32_t stack)
{
	struct lock_retry *q = retry_of(r, t);
	if (!q)
		return -1;
	if (q->last_fail_pending) {
		q->gap_total += ts - q->last_fail_pending;
		q->gaps++;
		q->last_fail_pending = 0;
	}
	if (!failed) {
		q->successes++;
		return 0;
	}
	if (t->n)
		q->fails_holding++;
	if (!q->fails++)
		q->first_fail = ts;
	q->last_fail = ts;
	q->last_fail_pending = ts;
	if (!q->stack)
		q->stack = stack;
	size_t k = 0;
	while (k < q->n_locks && q->locks[k] != lock)
		k++;
	if (k == q->n_locks && q->n_locks < 4)
		q->locks[q->n_locks++] = lock;
	return 0;
}

/* ---- semaphores ---------------------------------------------------------- */

/* One semaphore: an address between two of its inits or destroys. */
struct sem_class {
	uint32_t owner;           /* tid of the thread that took it */
	bool owned, bad;
};

static bool is_sem_event(const struct trace_event *e)
{
	return (e->kind == TRACE_LOCK_ACQUIRE || e->kind == TRACE_LOCK_WAIT ||
		e->kind == TRACE_LOCK_FAIL) && (e->b & 15) == TRACE_LOCK_SEM;
}

/* A semaphore behaves like a lock when every successful wait is followed
 * by a post of the same thread before any other wait succeeds, and it is
 * never posted by a thread that did not take it. A signal (posted by a
 * producer, waited for by a consumer) or a counting semaphore (taken by
 * several threads at once) is not one, for the whole of its life: its
 * records are marked in r->skip (left NULL when the trace has no
 * semaphore). Returns 0, or -1 when memory ran out. */
static int sem_lockish(struct replay *r)
{
	const struct trace_model *m = r->m;
	size_t i, n = m->n_events;
	for (i = 0; i < n && !is_sem_event(&m->events[i]); i++)
		;
	if (i == n)
		return 0;
	struct u64map cur = { 0 };       /* addr -> class index + 1 */
	struct sem_class *cls = NULL;
	size_t n_cls = 0, cap_cls = 0;
	uint32_t *of = calloc(n, sizeof(*of)); /* event -> class index + 1 */
	int rc = -1;
	if (!of)
		return -1;
	for (i = 0; i < n; i++) {
		const struct trace_event *e = &m->events[i];
		uint64_t *slot = NULL;
		switch (e->kind) {
		case TRACE_LOCK_INIT:
		case TRACE_LOCK_DESTROY:
			u64map_remove(&cur, e->a, NULL);
			continue;
		case TRACE_LOCK_RELEASE:
			if (!(slot = u64map_get(&cur, e->a)))
				continue;
			break;
		default:
			if (!is_sem_event(e))
				continue;
			slot = u64map_get(&cur, e->a);
			if (!slot) {
				if (GROW(cls, cap_cls, n_cls + 1) < 0 ||
				    u64map_put(&cur, e->a, n_cls + 1) < 0)
					goto out;
				cls[n_cls++] = (struct sem_class){ 0 };
				slot = u64map_get(&cur, e->a);
			}
			break;
		}
		struct sem_class *c = &cls[*slot - 1];
		of[i] = (uint32_t)*slot;
		if (e->kind == TRACE_LOCK_ACQUIRE) {
			c->bad |= c->owned;
			c->owned = true;
			c->owner = e->tid;
		} else if (e->kind == TRACE_LOCK_RELEASE) {
			c->bad |= !c->owned || c->owner != e->tid;
			c->owned = false;
		}
	}
	r->skip = calloc(n, 1);
	if (!r->skip)
		goto out;
	for (i = 0; i < n; i++)
		r->skip[i] = of[i] && cls[of[i] - 1].bad;
	rc = 0;
out:
	free(of);
	free(cls);
	u64map_release(&cur);
	return rc;
}

/* ---- the replay ---------------------------------------------------------- */

static int on_acquire(struct replay *r, struct tstate *t,
		      const struct trace_event *e)
{
	unsigned type = e->b & 15, how = (unsigned)(e->b >> 4);
	long li = lock_get(r, e->a, type, e);
	if (li < 0)
		return -1;
	uint32_t lock = (uint32_t)li;
	struct lock_info *l = &r->lm->locks[lock];
	bool read = type == TRACE_LOCK_READ;
	l->acquisitions++;
	if (e->c) {
		l->contended++;
		l->wait_total += e->c;
		if (e->c > l->wait_max)
			l->wait_max = e->c;
	}
	if ((how == TRACE_LOCK_TRY || how == TRACE_LOCK_TIMED) &&
	    type != TRACE_LOCK_SEM)
		if (note_attempt(r, t, e->ts, false, lock, e->stack) < 0)
			return -1;
	if (t->waiting && t->wait_lock == lock) {
		t->waiting = false;        /* its edges were added at the wait */
		t->n_added = 0;
	} else if ((how != TRACE_LOCK_TRY || type == TRACE_LOCK_SEM) &&
		   !holds(t, lock)) {
		if (attempt(r, t, lock, read, e->stack, e->ts) < 0)
			return -1;
	}
	if (t->n >= LOCK_MAX_HELD) {
		r->lm->held_dropped++;
		return 0;
	}
	if (GROW(t->h, t->cap, t->n + 1) < 0)
		return -1;
	t->h[t->n++] = (struct held){ .lock = lock, .addr = e->a, .ts = e->ts,
				      .stack = e->stack, .read = read };
	if (t->n > r->lm->max_held)
		r->lm->max_held = t->n;
	return 0;
}

static int on_wait(struct replay *r, struct tstate *t,
		   const struct trace_event *e)
{
	unsigned type = e->b & 15;
	long li = lock_get(r, e->a, type, e);
	if (li < 0)
		return -1;
	if (t->waiting)
		undo_wait(r, t);
	if (holds(t, (uint32_t)li))
		return 0;
	t->waiting = true;
	t->wait_lock = (uint32_t)li;
	t->n_added = 0;
	return attempt(r, t, (uint32_t)li, type == TRACE_LOCK_READ, e->stack,
		       e->ts);
}

static int on_fail(struct replay *r, struct tstate *t,
		   const struct trace_event *e)
{
	unsigned type = e->b & 15, how = (unsigned)(e->b >> 4);
	long li = lock_get(r, e->a, type, e);
	if (li < 0)
		return -1;
	struct lock_info *l = &r->lm->locks[li];
	if (how == TRACE_LOCK_TRY)
		l->try_fail++;
	else if (how == TRACE_LOCK_TIMED)
		l->timeouts++;
	if (t->waiting && t->wait_lock == (uint32_t)li)
		undo_wait(r, t);
	/* A semaphore's failed try is mostly a blocking wait's fast path:
	 * no retry loop of its own. */
	if ((how == TRACE_LOCK_TRY || how == TRACE_LOCK_TIMED) &&
	    type != TRACE_LOCK_SEM)
		return note_attempt(r, t, e->ts, true, (uint32_t)li, e->stack);
	return 0;
}

static void on_release(struct replay *r, struct tstate *t,
		       const struct trace_event *e)
{
	for (size_t i = t->n; i-- > 0;) {
		if (t->h[i].addr != e->a)
			continue;
		struct lock_info *l = &r->lm->locks[t->h[i].lock];
		uint64_t held = e->ts - t->h[i].ts;
		l->hold_total += held;
		if (held > l->hold_max)
			l->hold_max = held;
		memmove(&t->h[i], &t->h[i + 1], (t->n - i - 1) * sizeof(*t->h));
		t->n--;
		return;
	}
}

static uint32_t stack_ref(const struct trace_model *m, uint64_t id)
{
	uint64_t *v = id ? u64map_get(&m->stack_index, id) : NULL;
	return v ? (uint32_t)*v : 0;
}

/* TRACE_DEADLOCK's body, after dt (trace_format.h). */
static int on_deadlock(struct replay *r, const struct trace_event *e)
{
	const struct trace_model *m = r->m;
	struct lock_model *lm = r->lm;
	if (e->b > m->size || e->a > m->size - e->b)
		return 0;
	struct trace_cursor c = trace_cursor_make(m->data + e->b, e->a);
	uint64_t act, n;
	if (trace_get_varint(&c, &act) < 0 || trace_get_varint(&c, &n) < 0 ||
	    n == 0 || n > 64)
		return 0;
	struct lock_deadlock d = { .ts = e->ts, .action = (int)act };
	d.t = calloc(n, sizeof(*d.t));
	if (!d.t)
		return -1;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t v[6];
		for (int k = 0; k < 6; k++)
			if (trace_get_varint(&c, &v[k]) < 0)
				goto cut;
		struct lock_deadlock_thread *t = &d.t[d.n];
		bool join = (v[2] & 15) == TRACE_LOCK_JOIN;
		/* a join waits for a thread (v[1] its pthread_t), no lock */
		long li = join ? (long)UINT32_MAX
			       : lock_get(r, v[1], (unsigned)v[2] & 15, e);
		if (li < 0) {
			free(d.t);
			return -1;
		}
		*t = (struct lock_deadlock_thread){
			.tid = (uint32_t)v[0], .lock = (uint32_t)li,
			.type = (unsigned)v[2] & 15, .join = join,
			.cond = (v[2] >> 4) == TRACE_LOCK_COND,
			.wait_stack = stack_ref(m, v[3]), .since = v[4],
		};
		for (uint64_t j = 0; j < v[5]; j++) {
			uint64_t h[3];
			for (int k = 0; k < 3; k++)
				if (trace_get_varint(&c, &h[k]) < 0)
					goto cut;
			if (t->n_held == LOCK_DEADLOCK_HELD)
				continue;
			long hi = lock_get(r, h[0], (unsigned)h[1] & 15, e);
			if (hi < 0) {
				free(d.t);
				return -1;
			}
			t->held[t->n_held] = (uint32_t)hi;
			t->held_stack[t->n_held++] = stack_ref(m, h[2]);
		}
		d.n++;
	}
cut:
	if (!d.n) {
		free(d.t);
		return 0;
	}
	void *p = realloc(lm->deadlocks, (lm->n_deadlocks + 1) * sizeof(d));
	if (!p) {
		free(d.t);
		return -1;
	}
	lm->deadlocks = p;
	lm->deadlocks[lm->n_deadlocks++] = d;
	return 0;
}

/* TRACE_LOCK_MISUSE: a lock unlocked by a thread not holding it, or
 * destroyed while held. */
static int on_misuse(struct replay *r, const struct trace_event *e)
{
	struct lock_model *lm = r->lm;
	unsigned type = e->fn;
	if (type != TRACE_LOCK_READ && type != TRACE_LOCK_WRITE &&
	    type != TRACE_LOCK_RWLOCK && type != TRACE_LOCK_SPIN)
		type = TRACE_LOCK_MUTEX;
	/* (READ makes the lock an rwlock, whatever came before) */
	long li = lock_get(r, e->a, type == TRACE_LOCK_WRITE ||
			   type == TRACE_LOCK_RWLOCK ? TRACE_LOCK_READ : type, e);
	if (li < 0)
		return -1;
	void *p = realloc(lm->misuses, (lm->n_misuses + 1) * sizeof(*lm->misuses));
	if (!p)
		return -1;
	lm->misuses = p;
	lm->misuses[lm->n_misuses++] = (struct lock_misuse){
		.tid = e->tid, .lock = (uint32_t)li, .what = (unsigned)e->b,
		.type = type, .owner = (uint32_t)e->c, .stack = e->stack,
		.ts = e->ts,
	};
	return 0;
}

/* TRACE_LOCK_PAIRS: a run of leaf pairs, counted (trace_format.h). */
static int on_pairs(struct replay *r, const struct trace_event *e)
{
	const struct trace_model *m = r->m;
	if (e->b > m->size || e->a > m->size - e->b)
		return 0;
	struct trace_cursor c = trace_cursor_make(m->data + e->b, e->a);
	uint64_t v[9];
	for (int k = 0; k < 8; k++)
		if (trace_get_varint(&c, &v[k]) < 0)
			return 0;
	/* timed: how many of the pairs had their hold measured (absent:
	 * all); the hold total stands for the others too. */
	if (trace_cursor_left(&c) == 0 || trace_get_varint(&c, &v[8]) < 0 ||
	    v[8] > v[3])
		v[8] = v[3];
	unsigned type = v[1] & 15, how = (unsigned)(v[1] >> 4);
	/* The lock is first seen when the run began. */
	struct trace_event first = *e;
	uint64_t back = v[6] + v[7];
	first.ts = back < e->ts ? e->ts - back : 0;
	first.stack = stack_ref(m, v[2]);
	long li = lock_get(r, v[0], type, &first);
	if (li < 0)
		return -1;
	struct lock_info *l = &r->lm->locks[li];
	l->acquisitions += v[3];
	l->hold_untimed += v[3] - v[8];
	l->hold_total += v[4];
	if (v[5] > l->hold_max)
		l->hold_max = v[5];
	if (how == TRACE_LOCK_TRY || how == TRACE_LOCK_TIMED) {
		struct tstate *t = thread_state(r, e->tid);
		struct lock_retry *q = t ? retry_of(r, t) : NULL;
		if (!q)
			return -1;
		if (q->last_fail_pending) {
			q->gap_total += first.ts > q->last_fail_pending
					? first.ts - q->last_fail_pending : 0;
			q->gaps++;
			q->last_fail_pending = 0;
		}
		q->successes += v[3];
	}
	return 0;
}

/* Widens the span every block seen lies in. */
static void note_block(struct replay *r, uint64_t addr, uint64_t size)
{
	if (!r->blocks_hi || addr < r->blocks_lo)
		r->blocks_lo = addr;
	uint64_t end = addr + size < addr ? UINT64_MAX : addr + size;
	if (end > r->blocks_hi)
		r->blocks_hi = end;
}

static int step(struct replay *r, const struct trace_event *e, size_t idx)
{
	struct tstate *t;
	switch (e->kind) {
	case TRACE_ALLOC:
		note_block(r, e->a, e->c);
		return u64map_put(&r->blocks, e->a, idx + 1);
	case TRACE_REALLOC: {
		uint64_t *v = u64map_get(&r->blocks, e->a);
		if (e->b || !e->c) { /* the old block is gone */
			if (v)
				retire_range(r, e->a, r->m->events[*v - 1].c);
			u64map_remove(&r->blocks, e->a, NULL);
		}
		if (e->b)
			note_block(r, e->b, e->c);
		return e->b ? u64map_put(&r->blocks, e->b, idx + 1) : 0;
	}
	case TRACE_FREE: {
		uint64_t v;
		if (u64map_remove(&r->blocks, e->a, &v))
			retire_range(r, e->a, r->m->events[v - 1].c);
		return 0;
	}
	case TRACE_LOCK_INIT:
	case TRACE_LOCK_DESTROY:
		r->lm->events++;
		retire(r, e->a);
		return 0;
	case TRACE_THREAD_START: {
		/* A thread that got the id of one that ended: it starts
		 * holding nothing, waiting for nothing, with retries of its
		 * own (the ended one's locks died with it). */
		uint64_t *slot = u64map_get(&r->tindex, e->tid);
		if (slot) {
			t = &r->ts[*slot - 1];
			t->n = 0;
			t->waiting = false;
			t->n_added = 0;
			t->retry = 0;
		}
		return 0;
	}
	case TRACE_LOCK_ACQUIRE:
	case TRACE_LOCK_WAIT:
	case TRACE_LOCK_FAIL:
	case TRACE_LOCK_RELEASE:
		if (r->skip && r->skip[idx])
			return 0;
		r->lm->events++;
		if (!(t = thread_state(r, e->tid)))
			return -1;
		if (e->kind == TRACE_LOCK_ACQUIRE)
			return on_acquire(r, t, e);
		if (e->kind == TRACE_LOCK_WAIT)
			return on_wait(r, t, e);
		if (e->kind == TRACE_LOCK_FAIL)
			return on_fail(r, t, e);
		on_release(r, t, e);
		return 0;
	case TRACE_COND_WAIT:
		r->lm->events++;
		return 0;
	case TRACE_DEADLOCK:
		r->lm->events++;
		return on_deadlock(r, e);
	case TRACE_LOCK_MISUSE:
		r->lm->events++;
		return on_misuse(r, e);
	case TRACE_LOCK_PAIRS:
		r->lm->events++;
		return on_pairs(r, e);
	default:
		return 0;
	}
}

int lock_model_build(const struct trace_model *m, struct lock_model *lm)
{
	struct replay r = { .m = m, .lm = lm };
	int rc = sem_lockish(&r);
	for (size_t i = 0; i < m->n_events && rc == 0; i++)
		rc = step(&r, &m->events[i], i);
	for (size_t i = 0; i < r.n_ts; i++) {
		lm->waits_unfinished += r.ts[i].waiting;
		free(r.ts[i].h);
		free(r.ts[i].added);
	}
	free(r.ts);
	free(r.addrs);
	free(r.skip);
	u64map_release(&r.cur);
	u64map_release(&r.gens);
	u64map_release(&r.edge_of);
	u64map_release(&r.blocks);
	u64map_release(&r.tindex);
	return rc;
}

void lock_model_release(struct lock_model *lm)
{
	for (size_t i = 0; i < lm->n_locks; i++)
		free(lm->locks[i].name);
	for (size_t i = 0; i < lm->n_edges; i++) {
		free(lm->edges[i].held);
		free(lm->edges[i].gates);
	}
	free(lm->misuses);
	for (size_t i = 0; i < lm->n_deadlocks; i++)
		free(lm->deadlocks[i].t);
	free(lm->locks);
	free(lm->edges);
	free(lm->deadlocks);
	free(lm->retries);
	*lm = (struct lock_model){ 0 };
}

const char *lock_type_name(unsigned type)
{
	switch (type) {
	case TRACE_LOCK_MUTEX: return "mutex";
	case TRACE_LOCK_READ: return "rwlock (read)";
	case TRACE_LOCK_WRITE: return "rwlock (write)";
	case TRACE_LOCK_SPIN: return "spin lock";
	case TRACE_LOCK_RWLOCK: return "rwlock";
	case TRACE_LOCK_SEM: return "semaphore";
	default: return "lock";
	}
}
