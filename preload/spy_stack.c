/* spy_stack.c: capture and intern call stacks.
 * Runs inside hooks: no allocation (the table is one mmap), no locks. The
 * intern table is open addressing keyed by a 64-bit hash of the frames; a
 * slot is claimed with one compare-and-swap, so threads never wait on each
 * other except for the instant between a claim and its id being stored.
 */
#include "spy_stack.h"

#include "spy_core.h"
#include "spy_modules.h"
#include "spy_options.h"
#include "spy_sys.h"
#include "spy_writer.h"
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
static uintptr_t self_start, self_end;

void spy_stack_set_self(uintptr_t start, uintptr_t end)
{
	self_start = start;
	self_end = end;
}

void spy_stack_init(void)
{
	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
	unw_set_cache_size(unw_local_addr_space, 1024, 0);
	table = spy_sys_mmap(TABLE_SIZE * sizeof(struct slot));
}

void spy_stack_reset(void)
{
	if (table)
		spy_sys_munmap(table, TABLE_SIZE * sizeof(struct slot));
	table = spy_sys_mmap(TABLE_SIZE * sizeof(struct slot));
	next_id = 1;
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

uint32_t spy_stack_intern(void **frames, int got)
{
	if (!table)
		return 0;
	/* dlopen's hook cannot see the call end (the real dlopen must see the
	 * program as its caller), so the map is read again at the first stack
	 * taken after it: the first one without the loader's frames in it. */
	if (SPY_UNLIKELY(__atomic_load_n(&spy_modules_dirty, __ATOMIC_ACQUIRE)) &&
	    !spy_modules_in_loader(frames, got))
		spy_modules_snapshot();
	/* Keep the program's frames only: libspy's hooks at the top and
	 * main's wrapper at the bottom are not the program's business. */
	int n = 0;
	for (int i = 0; i < got && n < (int)spy_opt.stack_depth; i++) {
		uintptr_t f = (uintptr_t)frames[i];
		if (f < self_start || f >= self_end)
			frames[n++] = frames[i];
	}
	if (n <= 0)
		return 0;
	return intern(frames, n);
}
