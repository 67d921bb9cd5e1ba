/* spy_blockhash.c: the blocks the shadow cannot hold (spy_blockhash.h).
 * Runs inside the malloc hooks: no allocation but mmap, no stdio, no lock
 * the program can hold. A shard's spin lock is held for a few dozen
 * instructions and only with the re-entry guard taken, so a signal handler
 * that allocates on the same thread never reaches it (its calls pass
 * straight through); fork takes every shard lock so that the child never
 * inherits one held by a thread that no longer exists.
 */
#include "spy_blockhash.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spy_sys.h"

#define SPY_HEAPMAP_LIKELY(x) __builtin_expect(!!(x), 1)

#define NSHARDS 64
#define WAYS 4              /* entries per bucket: one cache line */
#define MIN_BUCKETS 256
#define EMPTY 0
#define SIZE_MASK ((1ull << 48) - 1)
#define FAMILY_SHIFT 48
#define FREED_BIT (1ull << 56)
#define PAST_BIT (1ull << 63) /* in info[0]: an insert went on past */

/* A bucket holds up to WAYS entries in one cache line: a lookup compares
 * them all at once and nearly always ends there, without the branches of
 * a slot-by-slot probe. An insert that finds its home bucket full marks it
 * "probed past" and takes the next; a lookup goes on to the next bucket
 * only through such a mark. Removing an entry just empties its way. */
struct bucket {
	uintptr_t addr[WAYS]; /* EMPTY or a block's address */
	uint64_t info[WAYS];  /* size | family << 48 | FREED_BIT (| PAST_BIT) */
} __attribute__((aligned(64)));

struct shard {
	int lock;
	struct bucket *b;
	size_t nb;      /* buckets: a power of two, or 0 before the first insert */
	size_t used;    /* entries: live + freed (written under the lock,
			 * read without it by shard_empty) */
	size_t past;    /* buckets marked probed past */
} __attribute__((aligned(64)));

static struct shard shards[NSHARDS];

static inline uint64_t hash(uintptr_t a)
{
	return (uint64_t)(a >> 4) * 0x9E3779B97F4A7C15ull;
}

static inline size_t home(uint64_t h, size_t nb)
{
	return (size_t)(h >> 20) & (nb - 1);
}

/* The shard of a block: chosen by the 64 MiB span its address lies in, not
 * by the address itself. glibc gives each thread an arena of its own, in
 * spans of its own, so threads mostly work in different shards: no lock or
 * cache line bounces between them, and a block freed by another thread is
 * still found at once. */
#define SPAN_SHIFT 26

static inline struct shard *shard_for(uintptr_t addr)
{
	return &shards[((uint64_t)(addr >> SPAN_SHIFT) * 0x9E3779B97F4A7C15ull) >> 58];
}

static __attribute__((noinline)) void lock_slow(struct shard *s)
{
	unsigned spins = 0;
	while (__atomic_exchange_n(&s->lock, 1, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(&s->lock, __ATOMIC_RELAXED)) {
			if (++spins > 200) {
				syscall(SYS_sched_yield);
				spins = 0;
			}
#if defined(__x86_64__) || defined(__i386__)
			__asm__ volatile("pause");
#endif
		}
	}
}

/* Nearly always free (threads keep to their own shards): one exchange. */
static inline void lock(struct shard *s)
{
	if (__builtin_expect(__atomic_exchange_n(&s->lock, 1, __ATOMIC_ACQUIRE), 0))
		lock_slow(s);
}

static inline void unlock(struct shard *s)
{
	__atomic_store_n(&s->lock, 0, __ATOMIC_RELEASE);
}

/* A bit per way of b whose address is a. */
static inline unsigned ways_holding(const struct bucket *b, uintptr_t a)
{
	return (unsigned)(b->addr[0] == a) | (unsigned)(b->addr[1] == a) << 1 |
	       (unsigned)(b->addr[2] == a) << 2 | (unsigned)(b->addr[3] == a) << 3;
}

/* The entry of addr (not EMPTY): its bucket and way, or NULL. */
static struct bucket *find(struct shard *s, uintptr_t addr, uint64_t h,
			   unsigned *way)
{
	size_t mask = s->nb - 1;
	if (!s->nb)
		return NULL;
	for (size_t i = home(h, s->nb), n = 0; n <= mask; i = (i + 1) & mask, n++) {
		struct bucket *b = &s->b[i];
		unsigned m = ways_holding(b, addr);
		if (SPY_HEAPMAP_LIKELY(m)) {
			*way = (unsigned)__builtin_ctz(m);
			return b;
		}
		if (SPY_HEAPMAP_LIKELY(!(b->info[0] & PAST_BIT)))
			return NULL;
	}
	return NULL;
}

/* Stores a new entry (addr is not in the table, which has room). */
static void put(struct bucket *t, size_t nb, size_t *past, uintptr_t addr,
		uint64_t info)
{
	for (size_t i = home(hash(addr), nb);; i = (i + 1) & (nb - 1)) {
		struct bucket *b = &t[i];
		unsigned m = ways_holding(b, EMPTY);
		if (m) {
			unsigned k = (unsigned)__builtin_ctz(m);
			b->addr[k] = addr;
			b->info[k] = info | (k == 0 ? b->info[0] & PAST_BIT : 0);
			return;
		}
		if (!(b->info[0] & PAST_BIT)) {
			b->info[0] |= PAST_BIT;
			(*past)++;
		}
	}
}

/* Rebuilds the table with nb buckets, which clears the probed-past marks.
 * -1 when no memory (the table stays as it was). */
static int rebuild(struct shard *s, size_t nb)
{
	struct bucket *t = spy_sys_mmap(nb * sizeof(*t));
	if (!t)
		return -1;
	size_t past = 0;
	for (size_t i = 0; i < s->nb; i++)
		for (unsigned k = 0; k < WAYS; k++)
			if (s->b[i].addr[k] != EMPTY)
				put(t, nb, &past, s->b[i].addr[k],
				    s->b[i].info[k] & ~PAST_BIT);
	if (s->b)
		spy_sys_munmap(s->b, s->nb * sizeof(*t));
	s->b = t;
	s->nb = nb;
	s->past = past;
	return 0;
}

/* Empties way k of b. */
static inline void erase(struct shard *s, struct bucket *b, unsigned k)
{
	b->addr[k] = EMPTY;
	b->info[k] &= PAST_BIT;
	__atomic_store_n(&s->used, s->used - 1, __ATOMIC_RELAXED);
}

/* 1 when s holds no entry at all: a lookup of a block it cannot hold
 * takes no lock. Sound without it: the block's insert happened before
 * its free (the program had to get the pointer from its malloc), and
 * while its entry is there the count stays above 0. */
static inline int shard_empty(const struct shard *s)
{
	return __atomic_load_n(&s->used, __ATOMIC_RELAXED) == 0;
}

/* Room for one more entry: grows at 5/8 full, and rebuilds at the same
 * size when probed-past marks pile up (a churning heap leaves them). */
static inline int make_room(struct shard *s)
{
	if (SPY_HEAPMAP_LIKELY((s->used + 1) * 8 <= s->nb * WAYS * 5 &&
			       s->past * 4 <= s->nb))
		return 0;
	/* Growing doubles the table (the entries then fill about 5/16 of
	 * it). Marks that piled up are cleared at the same size while the
	 * table is at most half full; fuller, a fresh table at the same size
	 * would be marked as much again at once, so it doubles. */
	size_t nb = s->nb ? s->nb : MIN_BUCKETS;
	if (s->past * 4 > nb && s->used * 2 > nb * WAYS)
		nb *= 2;
	while ((s->used + 1) * 8 > nb * WAYS * 5)
		nb *= 2;
	int rc = rebuild(s, nb);
	/* addresses that crowd a few buckets even so: a bigger table */
	while (rc == 0 && s->past * 4 > s->nb && s->nb < ((size_t)1 << 32))
		rc = rebuild(s, s->nb * 2);
	return rc;
}

void spy_blockhash_insert(uintptr_t addr, size_t size, unsigned family)
{
	uint64_t h = hash(addr);
	struct shard *s = shard_for(addr);
	uint64_t info = ((uint64_t)size & SIZE_MASK) |
			((uint64_t)family << FAMILY_SHIFT);
	unsigned k;
	lock(s);
	struct bucket *b = find(s, addr, h, &k);
	if (b) {
		/* Handed out again without a free we saw (a free that passed
		 * by unrecorded): the new block replaces the old. */
		b->info[k] = info | (b->info[k] & PAST_BIT);
		unlock(s);
		return;
	}
	if (make_room(s) < 0) {
		unlock(s);
		return;
	}
	put(s->b, s->nb, &s->past, addr, info);
	__atomic_store_n(&s->used, s->used + 1, __ATOMIC_RELAXED);
	unlock(s);
}

enum spy_heap_found spy_blockhash_release(uintptr_t addr, int hold,
					size_t *size, unsigned *family)
{
	uint64_t h = hash(addr);
	struct shard *s = shard_for(addr);
	enum spy_heap_found r = SPY_HEAP_ABSENT;
	unsigned k;
	if (shard_empty(s))
		return r; /* the blocks the loader frees unseen, mostly */
	lock(s);
	struct bucket *b = find(s, addr, h, &k);
	if (b) {
		uint64_t info = b->info[k];
		if (size)
			*size = (size_t)(info & SIZE_MASK);
		*family = (unsigned)((info >> FAMILY_SHIFT) & 0xff);
		if (info & FREED_BIT) {
			r = SPY_HEAP_FREED;
		} else {
			r = SPY_HEAP_LIVE;
			if (hold) {
				b->info[k] = info | FREED_BIT;
			} else {
				erase(s, b, k);
			}
		}
	}
	unlock(s);
	return r;
}

void spy_blockhash_remove(uintptr_t addr)
{
	uint64_t h = hash(addr);
	struct shard *s = shard_for(addr);
	unsigned k;
	if (shard_empty(s))
		return;
	lock(s);
	struct bucket *b = find(s, addr, h, &k);
	if (b)
		erase(s, b, k);
	unlock(s);
}

int spy_blockhash_live(uintptr_t addr, unsigned *family, size_t *size)
{
	uint64_t h = hash(addr);
	struct shard *s = shard_for(addr);
	unsigned k;
	int live = 0;
	if (shard_empty(s))
		return 0;
	lock(s);
	struct bucket *b = find(s, addr, h, &k);
	if (b && !(b->info[k] & FREED_BIT)) {
		*family = (unsigned)((b->info[k] >> FAMILY_SHIFT) & 0xff);
		*size = (size_t)(b->info[k] & SIZE_MASK);
		live = 1;
	}
	unlock(s);
	return live;
}

int spy_blockhash_find_containing(uintptr_t addr, uintptr_t *base,
				size_t *size)
{
	int found = 0;
	for (int j = 0; j < NSHARDS && !found; j++) {
		struct shard *s = &shards[j];
		lock(s);
		for (size_t i = 0; i < s->nb && !found; i++) {
			for (unsigned k = 0; k < WAYS; k++) {
				uintptr_t a = s->b[i].addr[k];
				uint64_t info = s->b[i].info[k];
				size_t sz = (size_t)(info & SIZE_MASK);
				if (a == EMPTY || (info & FREED_BIT))
					continue;
				if (addr > a && addr < a + sz) {
					*base = a;
					*size = sz;
					found = 1;
					break;
				}
			}
		}
		unlock(s);
	}
	return found;
}

static void freeze(void)
{
	for (int k = 0; k < NSHARDS; k++)
		lock(&shards[k]);
}

static void thaw(void)
{
	for (int k = NSHARDS - 1; k >= 0; k--)
		unlock(&shards[k]);
}

void spy_blockhash_each(void (*fn)(uintptr_t, size_t, int, void *), void *arg)
{
	for (int k = 0; k < NSHARDS; k++) {
		struct shard *s = &shards[k];
		lock(s);
		for (size_t i = 0; i < s->nb; i++) {
			for (unsigned k = 0; k < WAYS; k++) {
				uintptr_t a = s->b[i].addr[k];
				uint64_t info = s->b[i].info[k];
				if (a != EMPTY)
					fn(a, (size_t)(info & SIZE_MASK),
					   (info & FREED_BIT) != 0, arg);
			}
		}
		unlock(s);
	}
}

size_t spy_blockhash_tables(uintptr_t (*out)[2], size_t max)
{
	size_t n = 0;
	for (int k = 0; k < NSHARDS && n < max; k++)
		if (shards[k].b) {
			out[n][0] = (uintptr_t)shards[k].b;
			out[n][1] = out[n][0] + shards[k].nb * sizeof(struct bucket);
			n++;
		}
	return n;
}

/* In the child only the forking thread survives: the locks it took in
 * before_fork are released, and no other thread can hold one. */
static void before_fork(void)
{
	freeze();
}

static void after_fork(void)
{
	thaw();
}

void spy_blockhash_init(void)
{
	pthread_atfork(before_fork, after_fork, after_fork);
}
