/* spy_heapmap.c: the live-block map (spy_heapmap.h).
 * Runs inside the malloc hooks: no allocation but mmap, no stdio, no lock
 * the program can hold. A shard's spin lock is held for a few dozen
 * instructions and only with the re-entry guard taken, so a signal handler
 * that allocates on the same thread never reaches it (its calls pass
 * straight through); fork takes every shard lock so that the child never
 * inherits one held by a thread that no longer exists.
 */
#include "spy_heapmap.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spy_guard.h"
#include "spy_sys.h"

#define NSHARDS 64
#define MIN_CAP 1024
#define EMPTY 0
#define TOMB 1
#define SIZE_MASK ((1ull << 48) - 1)
#define FAMILY_SHIFT 48
#define FREED_BIT (1ull << 56)

struct slot {
	uintptr_t addr; /* EMPTY, TOMB or a block's address */
	uint64_t info;  /* size | family << 48 | FREED_BIT */
};

struct shard {
	int lock;
	struct slot *slots;
	size_t cap;     /* a power of two, or 0 before the first insert */
	size_t used;    /* live + freed + tombstones */
	size_t live;    /* entries not freed */
	size_t held;    /* entries freed (in quarantine) */
} __attribute__((aligned(64)));

static struct shard shards[NSHARDS];

__thread int spy_in_allocator;
__thread unsigned char spy_alloc_family, spy_free_family;

static inline uint64_t hash(uintptr_t a)
{
	return (uint64_t)(a >> 4) * 0x9E3779B97F4A7C15ull;
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

/* The slot holding addr, or NULL. */
static struct slot *find(struct shard *s, uintptr_t addr, uint64_t h)
{
	if (!s->cap)
		return NULL;
	size_t mask = s->cap - 1;
	for (size_t i = (size_t)(h >> 16) & mask;; i = (i + 1) & mask) {
		struct slot *sl = &s->slots[i];
		if (sl->addr == addr)
			return sl;
		if (sl->addr == EMPTY)
			return NULL;
	}
}

static void put(struct slot *slots, size_t cap, uintptr_t addr, uint64_t info)
{
	size_t mask = cap - 1;
	size_t i = (size_t)(hash(addr) >> 16) & mask;
	while (slots[i].addr > TOMB)
		i = (i + 1) & mask;
	slots[i].addr = addr;
	slots[i].info = info;
}

/* Rebuilds the table at a size that holds the entries at most half full;
 * drops tombstones. -1 when no memory (the table stays as it was). */
static int rebuild(struct shard *s)
{
	size_t n = s->live + s->held;
	size_t cap = MIN_CAP;
	while (cap < 2 * (n + 1))
		cap *= 2;
	struct slot *slots = spy_sys_mmap(cap * sizeof(*slots));
	if (!slots)
		return -1;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slots[i].addr > TOMB)
			put(slots, cap, s->slots[i].addr, s->slots[i].info);
	if (s->slots)
		spy_sys_munmap(s->slots, s->cap * sizeof(*slots));
	s->slots = slots;
	s->cap = cap;
	s->used = n;
	return 0;
}

/* Empties slot sl without leaving a tombstone: the entries after it that
 * may sit closer to their home slot move back (linear probing's backward
 * shift). With no tombstones a table of churning blocks never needs a
 * rebuild, only growth. */
static void erase(struct shard *s, struct slot *sl)
{
	size_t mask = s->cap - 1;
	size_t i = (size_t)(sl - s->slots), j = i;
	for (;;) {
		j = (j + 1) & mask;
		uintptr_t a = s->slots[j].addr;
		if (a == EMPTY)
			break;
		if (a == TOMB)
			continue;
		size_t k = (size_t)(hash(a) >> 16) & mask;
		/* The entry at j stays if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		s->slots[i] = s->slots[j];
		i = j;
	}
	s->slots[i].addr = EMPTY;
	s->used--;
}

void spy_heapmap_insert(uintptr_t addr, size_t size, unsigned family)
{
	uint64_t h = hash(addr);
	struct shard *s = shard_for(addr);
	uint64_t info = ((uint64_t)size & SIZE_MASK) |
			((uint64_t)family << FAMILY_SHIFT);
	lock(s);
	if ((s->used + 1) * 4 > s->cap * 3 && rebuild(s) < 0) {
		unlock(s);
		return;
	}
	/* One probe both looks for the address and finds where it would go. */
	size_t mask = s->cap - 1;
	struct slot *free_slot = NULL;
	for (size_t i = (size_t)(h >> 16) & mask;; i = (i + 1) & mask) {
		struct slot *sl = &s->slots[i];
		if (sl->addr == addr) {
			/* Handed out again without a free we saw (a free that
			 * passed by unrecorded): the new block replaces the old. */
			if (sl->info & FREED_BIT) {
				s->held--;
				s->live++;
			}
			sl->info = info;
			unlock(s);
			return;
		}
		if (sl->addr == TOMB && !free_slot)
			free_slot = sl;
		if (sl->addr == EMPTY) {
			if (!free_slot) {
				free_slot = sl;
				s->used++;
			}
			break;
		}
	}
	free_slot->addr = addr;
	free_slot->info = info;
	s->live++;
	unlock(s);
}

enum spy_heap_found spy_heapmap_release(uintptr_t addr, int hold,
					size_t *size, unsigned *family)
{
	uint64_t h = hash(addr);
	struct shard *s = shard_for(addr);
	enum spy_heap_found r = SPY_HEAP_ABSENT;
	lock(s);
	struct slot *sl = find(s, addr, h);
	if (sl) {
		*size = (size_t)(sl->info & SIZE_MASK);
		*family = (unsigned)((sl->info >> FAMILY_SHIFT) & 0xff);
		if (sl->info & FREED_BIT) {
			r = SPY_HEAP_FREED;
		} else {
			r = SPY_HEAP_LIVE;
			s->live--;
			if (hold) {
				sl->info |= FREED_BIT;
				s->held++;
			} else {
				erase(s, sl);
			}
		}
	}
	unlock(s);
	return r;
}

void spy_heapmap_remove(uintptr_t addr)
{
	uint64_t h = hash(addr);
	struct shard *s = shard_for(addr);
	lock(s);
	struct slot *sl = find(s, addr, h);
	if (sl) {
		if (sl->info & FREED_BIT)
			s->held--;
		else
			s->live--;
		erase(s, sl);
	}
	unlock(s);
}

int spy_heapmap_find_containing(uintptr_t addr, uintptr_t *base,
				size_t *size)
{
	int found = 0;
	for (int k = 0; k < NSHARDS && !found; k++) {
		struct shard *s = &shards[k];
		lock(s);
		for (size_t i = 0; i < s->cap; i++) {
			struct slot *sl = &s->slots[i];
			size_t sz = (size_t)(sl->info & SIZE_MASK);
			if (sl->addr <= TOMB || (sl->info & FREED_BIT))
				continue;
			if (addr > sl->addr && addr < sl->addr + sz) {
				*base = sl->addr;
				*size = sz;
				found = 1;
				break;
			}
		}
		unlock(s);
	}
	return found;
}

void spy_heapmap_freeze(void)
{
	for (int k = 0; k < NSHARDS; k++)
		lock(&shards[k]);
}

void spy_heapmap_thaw(void)
{
	for (int k = NSHARDS - 1; k >= 0; k--)
		unlock(&shards[k]);
}

void spy_heapmap_each(void (*fn)(uintptr_t, size_t, int, void *), void *arg)
{
	for (int k = 0; k < NSHARDS; k++) {
		struct shard *s = &shards[k];
		for (size_t i = 0; i < s->cap; i++) {
			struct slot *sl = &s->slots[i];
			if (sl->addr > TOMB)
				fn(sl->addr, (size_t)(sl->info & SIZE_MASK),
				   (sl->info & FREED_BIT) != 0, arg);
		}
	}
}

int spy_heapmap_owns_range(uintptr_t start, uintptr_t end)
{
	for (int k = 0; k < NSHARDS; k++) {
		uintptr_t a = (uintptr_t)shards[k].slots;
		uintptr_t b = a + shards[k].cap * sizeof(struct slot);
		if (a && start < b && a < end)
			return 1;
	}
	return 0;
}

size_t spy_heapmap_tables(uintptr_t (*out)[2], size_t max)
{
	size_t n = 0;
	for (int k = 0; k < NSHARDS && n < max; k++)
		if (shards[k].slots) {
			out[n][0] = (uintptr_t)shards[k].slots;
			out[n][1] = out[n][0] + shards[k].cap * sizeof(struct slot);
			n++;
		}
	return n;
}

size_t spy_heapmap_live_count(void)
{
	size_t n = 0;
	for (int k = 0; k < NSHARDS; k++)
		n += __atomic_load_n(&shards[k].live, __ATOMIC_RELAXED);
	return n;
}

/* In the child only the forking thread survives: the locks it took in
 * before_fork are released, and no other thread can hold one. */
static void before_fork(void)
{
	spy_heapmap_freeze();
}

static void after_fork(void)
{
	spy_heapmap_thaw();
}

void spy_heapmap_init(void)
{
	pthread_atfork(before_fork, after_fork, after_fork);
	spy_guard_init();
}
