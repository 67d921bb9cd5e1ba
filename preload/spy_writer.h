/* spy_writer.h: the trace file and the per-thread regions that feed it.
 * Records go straight into the calling thread's region of the file (a
 * shared mapping) without any shared lock or system call; only a full
 * region costs a few system calls. A failure turns tracing off for good
 * with one warning; the program never notices. All of this may run inside
 * hooks and signal handlers: no allocation.
 */
#ifndef SPY_WRITER_H
#define SPY_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "spy_core.h"
#include "spy_sys.h"
#include "trace_encode.h"

#define SPY_REGION_SIZE (16u * 1024)
#define SPY_NO_CHUNK UINT32_MAX

/* One thread's writing state. Only spy_writer.c and the inline fast paths
 * below touch it. */
struct spy_buffer {
	pid_t owner;               /* tid of the thread using it, 0 if free */
	uint8_t *window;           /* mapped run of regions, or NULL */
	uint64_t window_off;       /* its offset in the file */
	uint32_t window_regions;   /* how many */
	uint32_t grow;             /* regions to map next time */
	uint8_t *region;           /* the region being filled, in the window */
	uint32_t used;             /* bytes of the region holding chunks */
	uint32_t chunk;            /* offset of the open chunk, or NO_CHUNK */
	uint32_t record;           /* offset of the record being written */
	uint8_t kind;              /* its kind, stored last */
	uint8_t window_shared;     /* the window is a first window: part of
				      a run of them, never unmapped alone */
	uint64_t base_ns;          /* the open chunk's base time */
	uint64_t base_tsc;         /* time stamp counter at base_ns */
	uint64_t last_ns;          /* time of the last record */
	uint64_t last_addr;        /* running address for ":delta" fields */
	struct spy_buffer *next;   /* registry link */
} __attribute__((aligned(64))); /* threads' buffers never share a line */

/* ns per time-stamp-counter tick in 32.32 fixed point; 0 while unknown. */
extern uint64_t spy_writer_rate_q32;

/* Opens the trace file named by the out= option for a process started the
 * way cause says (trace_cause), writes the file header. 0 on success, -1
 * (with one warning printed) when tracing is impossible. */
int spy_writer_open(int cause);

/* The trace's absolute path ("" before it is open). */
const char *spy_writer_path(void);

/* 1 if the calling process's trace holds a record of one of the kinds (a
 * bitmap: bit k of kinds[k / 8] for kind k), is bigger than 1 MiB, or
 * cannot be read back; 0 if none. Reads the file. For a forked child
 * about to exec: is its trace worth keeping? */
int spy_writer_holds_any(const uint8_t kinds[32]);

/* Calls fn with the address of every block the calling process's trace
 * records as handed out (ALLOC, and the new address of a REALLOC), in the
 * order written, repeats included. Reads the file back. 0 when done, -1
 * when the trace cannot be read back whole. */
int spy_writer_each_handed_out(void (*fn)(uintptr_t addr, void *arg), void *arg);

/* The largest max_body spy_writer_begin accepts. */
#define SPY_WRITER_MAX_BODY (16u * 1024 - 88)

/* The slow paths of begin and end below: first record of a thread, a
 * full region, a long record. */
uint8_t *spy_writer_begin_slow(unsigned kind, size_t max_body, uint64_t when);
void spy_writer_end_slow(struct spy_buffer *b, uint8_t *end);

static inline uint64_t spy_read_tsc(void)
{
	return __builtin_ia32_rdtsc();
}

/* b's open chunk's base time plus the counter ticks since, scaled by
 * rate (known, not 0). */
static inline __attribute__((always_inline)) uint64_t
spy_writer_ticks_ns(const struct spy_buffer *b, uint64_t rate)
{
	uint64_t ticks = spy_read_tsc() - b->base_tsc;
	return b->base_ns + (uint64_t)(((unsigned __int128)ticks * rate) >> 32);
}

/* The time for a record of b's open chunk; the clock itself while the
 * rate is unknown. */
static inline __attribute__((always_inline)) uint64_t
spy_writer_time_of(const struct spy_buffer *b, uint32_t chunk)
{
	uint64_t rate = __atomic_load_n(&spy_writer_rate_q32, __ATOMIC_RELAXED);
	if (!rate || chunk == SPY_NO_CHUNK)
		return spy_now_ns();
	return spy_writer_ticks_ns(b, rate);
}

static inline __attribute__((always_inline)) uint64_t spy_writer_time(const struct spy_buffer *b)
{
	return spy_writer_time_of(b, b->chunk);
}

/* Starts a record of kind with a body of at most max_body bytes in the
 * calling thread's region, with the time given (when: spy_writer_now()
 * taken earlier, for events that logically happened before the call that
 * reveals them) or now (when == 0); writes the time field and returns where
 * the next field goes, or NULL when nothing can be recorded. The record
 * counts once spy_writer_end(end) is called, end being one past its last
 * byte. Inline: this runs for every event. */
static inline __attribute__((always_inline)) uint8_t *spy_writer_begin_at(unsigned kind, size_t max_body,
					   uint64_t when)
{
	struct spy_buffer *b = spy_self.buf;
	/* The common case: an open chunk with room for a short record. The
	 * fields read once into locals: only this thread changes them, and
	 * the atomic load of the rate would make the compiler read them
	 * again. */
	uint32_t used, chunk;
	if (SPY_LIKELY(b && spy_tracing && max_body < 128 &&
		       (chunk = b->chunk) != SPY_NO_CHUNK &&
		       (used = b->used) + 2 + TRACE_VARINT_MAX + max_body <=
			       SPY_REGION_SIZE)) {
		uint64_t last = b->last_ns;
		uint64_t now = when ? when : spy_writer_time_of(b, chunk);
		if (now < last)
			now = last; /* dt cannot go backwards in a chunk */
		uint8_t *start = b->region + used;
		b->record = used;
		b->kind = (uint8_t)kind;
		start[0] = 0;  /* the kind byte is stored last */
		start[1] = 1;  /* length bytes reserved */
		uint8_t *p = trace_put_varint(start + 2, now - last);
		b->last_ns = now;
		return p;
	}
	return spy_writer_begin_slow(kind, max_body, when);
}

static inline __attribute__((always_inline)) uint8_t *
spy_writer_begin(unsigned kind, size_t max_body)
{
	return spy_writer_begin_at(kind, max_body, 0);
}

/* Ends the record begun last: length, then the chunk's length, then the
 * kind byte (trace_format.h: a writer killed between any two of these
 * stores leaves a trace that reads). */
static inline __attribute__((always_inline)) void spy_writer_end(uint8_t *end)
{
	struct spy_buffer *b = spy_self.buf;
	uint8_t *region = b->region;
	uint32_t record = b->record;
	uint8_t *start = region + record;
	size_t body_len = (size_t)(end - (start + 2));
	if (SPY_LIKELY(start[1] == 1 && body_len < 128)) {
		/* read before the stores: the fences would make the compiler
		 * read them again, and only this thread changes them */
		uint32_t chunk = b->chunk;
		uint8_t kind = b->kind;
		uint32_t used = record + 2 + (uint32_t)body_len;
		start[1] = (uint8_t)body_len;
		b->used = used;
		__atomic_signal_fence(__ATOMIC_RELEASE);
		trace_put_u32(region + chunk + 4,
			      used - chunk - TRACE_CHUNK_HEADER_SIZE);
		__atomic_signal_fence(__ATOMIC_RELEASE);
		start[0] = kind;
		return;
	}
	spy_writer_end_slow(b, end);
}

/* A heap record in short form (trace_format.h: TRACE_ALLOC_SHORT,
 * TRACE_FREE_SHORT), built in two words and stored whole: no field by
 * field encoding, which the general path pays for every record. tail
 * holds the fields after the address, little endian, in tail_len bytes
 * (at most 8). Returns 0, having written nothing, when the record has no
 * short form here (the caller writes the general one): addr not a
 * multiple of 16 bytes from the thread's previous address or 128 MiB or
 * more away from it, 16 µs or more since the thread's previous record, no
 * room left in the region, the clock's rate not yet known. */
static inline __attribute__((always_inline)) int
spy_writer_heap_short(unsigned kind, unsigned fn, uintptr_t addr,
		      uint64_t tail, unsigned tail_len)
{
	struct spy_buffer *b = spy_self.buf;
	uint32_t used, chunk;
	uint64_t rate;
	if (SPY_UNLIKELY(!b || !spy_tracing ||
			 (chunk = b->chunk) == SPY_NO_CHUNK ||
			 (used = b->used) + 16 > SPY_REGION_SIZE ||
			 !(rate = __atomic_load_n(&spy_writer_rate_q32,
						  __ATOMIC_RELAXED))))
		return 0;
	uint64_t delta = addr - b->last_addr;
	int64_t d16 = (int64_t)delta >> 4;
	if (SPY_UNLIKELY((delta & 15) || d16 != (d16 << 40) >> 40))
		return 0;
	uint64_t now = spy_writer_ticks_ns(b, rate);
	uint64_t last = b->last_ns;
	uint64_t dt = now - last;
	if (SPY_UNLIKELY(now < last)) {
		now = last; /* dt cannot go backwards in a chunk */
		dt = 0;
	}
	if (SPY_UNLIKELY(dt >= 16384))
		return 0;
	/* kind (0 until the end), body length, dt as a two-byte varint, fn,
	 * addr16; then the tail, whose bytes past tail_len are zero, as the
	 * region's unwritten bytes are */
	uint32_t len = 8 + tail_len;
	uint64_t lo = (uint64_t)(len - 2) << 8 | (0x80 | (dt & 0x7f)) << 16 |
		      (dt >> 7) << 24 | (uint64_t)fn << 32 |
		      ((uint64_t)d16 & 0xffffff) << 40;
	uint8_t *region = b->region;
	uint8_t *start = region + used;
	__builtin_memcpy(start + 8, &tail, 8);
	__builtin_memcpy(start, &lo, 8);
	used += len;
	b->used = used;
	b->last_ns = now;
	b->last_addr = addr;
	/* then the chunk's length, then the kind byte (as spy_writer_end) */
	__atomic_signal_fence(__ATOMIC_RELEASE);
	trace_put_u32(region + chunk + 4, used - chunk - TRACE_CHUNK_HEADER_SIZE);
	__atomic_signal_fence(__ATOMIC_RELEASE);
	start[0] = (uint8_t)kind;
	return 1;
}

/* The bytes a stack id takes in a short heap record: none for no stack,
 * else two or three. */
static inline __attribute__((always_inline)) unsigned
spy_writer_short_stack_len(uint32_t stack)
{
	return !stack ? 0 : stack < 0x10000 ? 2 : 3;
}

/* The time records are stamped with (CLOCK_MONOTONIC nanoseconds, read
 * cheaply). */
uint64_t spy_writer_now(void);

/* trace_put_varint for an address delta: blocks lie megabytes apart, so
 * most deltas take three or four bytes, written here without a loop. */
static inline __attribute__((always_inline)) uint8_t *
spy_writer_put_delta(uint8_t *p, uint64_t v)
{
	if (v < 0x4000 || v >= ((uint64_t)1 << 28))
		return trace_put_varint(p, v);
	p[0] = (uint8_t)(v | 0x80);
	if (v < ((uint64_t)1 << 21)) {
		p[1] = (uint8_t)((v >> 7) | 0x80);
		p[2] = (uint8_t)(v >> 14);
		return p + 3;
	}
	p[1] = (uint8_t)((v >> 7) | 0x80);
	p[2] = (uint8_t)((v >> 14) | 0x80);
	p[3] = (uint8_t)(v >> 21);
	return p + 4;
}

/* Writes addr as a delta from the buffer's running address. Only between
 * begin and end. */
static inline __attribute__((always_inline)) uint8_t *spy_writer_put_addr(uint8_t *p, uintptr_t addr)
{
	struct spy_buffer *b = spy_self.buf;
	p = spy_writer_put_delta(p, trace_zigzag((int64_t)(addr - b->last_addr)));
	b->last_addr = addr;
	return p;
}

/* A NOTE record: text (a sentence for the reader of the report), level 0
 * for information, 1 for a warning. */
void spy_writer_note(unsigned level, const char *text);

/* Records the exit and the end marker. Records may still follow. */
void spy_writer_finish(unsigned how, int status, int sig);
/* The exit and end records alone, from a signal handler that interrupted
 * this thread's own finishing of the trace (nothing given back). */
void spy_writer_finish_interrupting(unsigned how, int status, int sig);

/* The calling thread is exiting: hand its region on to the next thread. */
void spy_writer_thread_exit(void);

/* In a fork child: the parent's regions are gone; a new trace is opened
 * by the caller. */
void spy_writer_after_fork_child(void);

/* A SIGBUS at addr: if it is in a trace region (the file was truncated by
 * someone), replace the region with plain memory, stop tracing and return
 * 1, so the faulting store can simply be retried. Signal-safe. */
int spy_writer_absorb_fault(const void *addr);

#endif
