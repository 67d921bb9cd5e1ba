/* spy_shadow.c: the nibble shadow of the heap (spy_shadow.h).
 * Runs inside the malloc hooks: no allocation but mmap, no stdio, no lock
 * the program can hold.
 */
#include "spy_shadow.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spy_sys.h"

#define LEAF_SHIFT SPY_SHADOW_LEAF_SHIFT
#define DIR_SHIFT SPY_SHADOW_DIR_SHIFT
#define ADDR_BITS 47
#define LEAF_BYTES SPY_SHADOW_LEAF_BYTES
#define DIR_SLOTS SPY_SHADOW_DIR_SLOTS
#define TOP_SLOTS ((size_t)1 << (ADDR_BITS - DIR_SHIFT))

uint8_t **spy_shadow_top[TOP_SLOTS];
#define top spy_shadow_top
/* Which top slots have a directory: a bit each, and a bit for each word
 * of those that is not 0. A walk over every directory then reads a few
 * words, not the whole megabyte of top (which, untouched, would fault in
 * page by page: a quarter of a millisecond at every exit). */
static uint64_t top_used[TOP_SLOTS / 64];
static uint64_t top_used_words[TOP_SLOTS / 64 / 64];

/* ---- the pool leaves and directories come from ---------------------- */

/* Chunks carved in order, the first 256 KiB and each next one twice the
 * size, up to 16 MiB: a small program takes little address space (which
 * RLIMIT_AS counts), a big heap few mappings (the leak scan leaves each
 * one out of its roots). */
#define FIRST_CHUNK ((size_t)256 << 10)
#define LAST_CHUNK ((size_t)16 << 20)
#define MAX_CHUNKS 4096

static struct {
	int lock;
	uint8_t *cur;
	size_t used, size;
	size_t n;
	uint8_t *chunk[MAX_CHUNKS];
	size_t chunk_size[MAX_CHUNKS];
} pool;

static void pool_lock(void)
{
	while (__atomic_exchange_n(&pool.lock, 1, __ATOMIC_ACQUIRE))
		syscall(SYS_sched_yield);
}

static void pool_unlock(void)
{
	__atomic_store_n(&pool.lock, 0, __ATOMIC_RELEASE);
}

/* Zeroed memory for a leaf or directory (at most FIRST_CHUNK bytes). */
static void *pool_take(size_t bytes)
{
	void *p = NULL;
	pool_lock();
	if (!pool.cur || pool.used + bytes > pool.size) {
		size_t size = pool.size ? 2 * pool.size : FIRST_CHUNK;
		if (size > LAST_CHUNK)
			size = LAST_CHUNK;
		uint8_t *c = pool.n < MAX_CHUNKS ? spy_sys_mmap(size) : NULL;
		if (c) {
			pool.chunk_size[pool.n] = size;
			__atomic_store_n(&pool.chunk[pool.n], c, __ATOMIC_RELEASE);
			__atomic_store_n(&pool.n, pool.n + 1, __ATOMIC_RELEASE);
			pool.cur = c;
			pool.used = 0;
			pool.size = size;
		}
	}
	if (pool.cur && pool.used + bytes <= pool.size) {
		p = pool.cur + pool.used;
		pool.used += bytes;
	}
	pool_unlock();
	return p;
}

/* A slot holding a pointer to a table: installed once, never replaced. A
 * thread that loses the race leaves its table unused in the pool (rare:
 * two threads starting blocks in one fresh MiB at once). */
static void *slot_get(void **slot, size_t bytes, int make)
{
	void *t = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (__builtin_expect(t != NULL, 1) || !make)
		return t;
	void *fresh = pool_take(bytes);
	if (!fresh)
		return NULL;
	void *none = NULL;
	if (__atomic_compare_exchange_n(slot, &none, fresh, 0, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return fresh;
	return none;
}

static __attribute__((noinline)) uint8_t **dir_make(size_t d)
{
	void *fresh = pool_take(DIR_SLOTS * sizeof(uint8_t *));
	if (!fresh)
		return NULL;
	void *none = NULL;
	if (!__atomic_compare_exchange_n((void **)&top[d], &none, fresh, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return none;
	__atomic_fetch_or(&top_used[d / 64], 1ull << (d % 64), __ATOMIC_RELEASE);
	__atomic_fetch_or(&top_used_words[d / 4096], 1ull << (d / 64 % 64),
			  __ATOMIC_RELEASE);
	return fresh;
}

uint8_t *spy_shadow_byte_make(uintptr_t a)
{
	size_t d = a >> DIR_SHIFT;
	uint8_t **dir = __atomic_load_n(&top[d], __ATOMIC_ACQUIRE);
	if (!dir && !(dir = dir_make(d)))
		return NULL;
	uint8_t *leaf = slot_get((void **)&dir[(a >> LEAF_SHIFT) & (DIR_SLOTS - 1)],
				 LEAF_BYTES, 1);
	if (!leaf)
		return NULL;
	return &leaf[(a >> 5) & (LEAF_BYTES - 1)];
}

uintptr_t spy_shadow_prev(uintptr_t a, uintptr_t low)
{
	if (a >= ((uintptr_t)1 << ADDR_BITS))
		a = ((uintptr_t)1 << ADDR_BITS) - 16;
	a &= ~(uintptr_t)15;
	while (a >= low) {
		const uint8_t *leaf = NULL;
		uint8_t **dir = __atomic_load_n(&top[a >> DIR_SHIFT], __ATOMIC_ACQUIRE);
		if (dir)
			leaf = __atomic_load_n(&dir[(a >> LEAF_SHIFT) & (DIR_SLOTS - 1)],
					       __ATOMIC_ACQUIRE);
		uintptr_t leaf_start = a & ~(((uintptr_t)1 << LEAF_SHIFT) - 1);
		if (leaf) {
			for (;;) {
				/* At the top of an 8-byte word (256 bytes of
				 * address), the whole word at once: a free
				 * stretch goes by 16 granules a step. */
				if ((a & 255) == 240) {
					const uint64_t *w = (const uint64_t *)
						&leaf[((a >> 5) & (LEAF_BYTES - 1)) & ~(size_t)7];
					uint64_t v = __atomic_load_n(w, __ATOMIC_RELAXED);
					uintptr_t word_start = a - 240;
					if (v) {
						uintptr_t hit = word_start +
							(uintptr_t)((63 - __builtin_clzll(v)) / 4) * 16;
						return hit >= low ? hit : 0;
					}
					if (word_start == leaf_start || word_start < low + 16)
						break;
					a = word_start - 16;
					continue;
				}
				uint8_t v = __atomic_load_n(&leaf[(a >> 5) & (LEAF_BYTES - 1)],
							    __ATOMIC_RELAXED);
				if ((v >> spy_shadow_shift(a)) & 15)
					return a;
				if (a == leaf_start || a - 16 < low)
					break;
				a -= 16;
			}
		}
		if (leaf_start == 0)
			break;
		a = leaf_start - 16;
	}
	return 0;
}

/* The next top slot from d on that has a directory, or TOP_SLOTS. */
static size_t next_dir(size_t d)
{
	while (d < TOP_SLOTS) {
		size_t w = d / 64;
		uint64_t ws = __atomic_load_n(&top_used_words[w / 64],
					      __ATOMIC_ACQUIRE) >> (w % 64);
		if (!ws) {
			d = (w / 64 + 1) * 64 * 64;
			continue;
		}
		size_t w2 = w + (size_t)__builtin_ctzll(ws);
		if (w2 != w)
			d = w2 * 64;
		uint64_t bits = __atomic_load_n(&top_used[w2], __ATOMIC_ACQUIRE) >>
				(d % 64);
		if (bits)
			return d + (size_t)__builtin_ctzll(bits);
		d = (w2 + 1) * 64;
	}
	return TOP_SLOTS;
}

void spy_shadow_each(void (*fn)(uintptr_t, unsigned, void *), void *arg)
{
	for (size_t d = next_dir(0); d < TOP_SLOTS; d = next_dir(d + 1)) {
		uint8_t **dir = __atomic_load_n(&top[d], __ATOMIC_ACQUIRE);
		if (!dir)
			continue;
		for (size_t l = 0; l < DIR_SLOTS; l++) {
			const uint8_t *leaf = __atomic_load_n(&dir[l], __ATOMIC_ACQUIRE);
			if (!leaf)
				continue;
			uintptr_t base = (uintptr_t)d << DIR_SHIFT |
					 (uintptr_t)l << LEAF_SHIFT;
			const uint64_t *w = (const uint64_t *)leaf;
			for (size_t i = 0; i < LEAF_BYTES / 8; i++) {
				if (!__atomic_load_n(&w[i], __ATOMIC_RELAXED))
					continue;
				for (size_t j = 0; j < 8; j++) {
					uint8_t v = leaf[i * 8 + j];
					uintptr_t a = base + (i * 8 + j) * 32;
					if (v & 15)
						fn(a, v & 15, arg);
					if (v >> 4)
						fn(a + 16, v >> 4, arg);
				}
			}
		}
	}
}

size_t spy_shadow_tables(uintptr_t (*out)[2], size_t max)
{
	size_t n = 0, chunks = __atomic_load_n(&pool.n, __ATOMIC_ACQUIRE);
	for (size_t i = 0; i < chunks; i++) {
		uintptr_t a = (uintptr_t)__atomic_load_n(&pool.chunk[i], __ATOMIC_ACQUIRE);
		size_t len = pool.chunk_size[i];
		if (!a)
			continue;
		/* chunks the kernel placed side by side make one range */
		size_t k;
		for (k = 0; k < n; k++) {
			if (out[k][1] == a) {
				out[k][1] = a + len;
				break;
			}
			if (out[k][0] == a + len) {
				out[k][0] = a;
				break;
			}
		}
		if (k == n && n < max) {
			out[n][0] = a;
			out[n][1] = a + len;
			n++;
		}
	}
	return n;
}

/* The child of a fork must never inherit the pool lock held by a thread
 * that no longer exists there. */
static void before_fork(void)
{
	pool_lock();
}

static void after_fork(void)
{
	pool_unlock();
}

void spy_shadow_init(void)
{
	pthread_atfork(before_fork, after_fork, after_fork);
}
