/* rec_io.h: the I/O recorder: counts read- and write-class calls per
 * thread, per (call site, descriptor, call), in a table of the thread's
 * own, and writes the totals to the trace (TRACE_IO_SITE) when the thread
 * or the process ends, not one record per call.
 * Inlined into the hooks (hook_io.c), so that a stack captured here starts
 * at the hook. Never allocates with the program's allocator (tables are
 * mmap'd), takes no lock, keeps errno.
 */
#ifndef REC_IO_H
#define REC_IO_H

#include <stddef.h>
#include <stdint.h>

#include "spy_core.h"
#include "trace_format.h"

/* One (call site, descriptor, call) of one thread. Counters are since the
 * last time they were written out (rec_io_flush_*). */
struct rec_io_slot {
	uintptr_t key;          /* the call's return address, or a stack id
				 * tagged REC_IO_STACK_KEY; 0 = free slot */
	int32_t fd;
	uint8_t fn;             /* enum trace_io_fn */
	uint8_t used;           /* counters hold something not yet written */
	uint32_t desc;          /* TRACE_IO_FD id, 0 if none */
	uint32_t gen;           /* rec_io_fd_gen[fd] when the slot was made */
	uint32_t stack;         /* interned stack id, 0 if none */
	uint64_t calls, bytes, errors, timed_calls, timed_ticks, max_size;
	uint32_t hist[TRACE_IO_BUCKETS];
};

#define REC_IO_SLOTS 256          /* per thread; a power of two */
#define REC_IO_PROBES 16
#define REC_IO_STACK_KEY ((uintptr_t)1 << 63)
#define REC_IO_SAMPLE_MASK 15u    /* time one call in 16 */

struct rec_io_table {
	pid_t tid;
	int flushing;             /* 1 while someone writes it out */
	uint32_t tick;            /* calls so far, for sampling */
	uint64_t seen_writes;     /* syscw-class calls, never reset */
	uint64_t seen_reads;
	struct rec_io_table *next;  /* registry link (every table of the process) */
	struct rec_io_slot overflow[TRACE_IO_FN_MAX];  /* calls that found no
						       * free slot, per call */
	struct rec_io_slot slots[REC_IO_SLOTS];
};

extern __thread struct rec_io_table *rec_io_self
	__attribute__((tls_model("initial-exec")));

/* Address ranges of the language runtimes (libc, libstdc++): a call whose
 * return address lies in one was made on the program's behalf by a
 * library function (printf, fputc, an ostream), so the site is found by
 * unwinding. At most 8, read-only after start-up. */
extern uintptr_t rec_io_runtime_lo[8], rec_io_runtime_hi[8];
extern int rec_io_n_runtime;
/* 1 once the process is ending, or with io_every=1: every call is then
 * written at once (and, with io_every=1, timed). */
extern volatile int rec_io_ending;
extern int rec_io_every;

/* Sets up the recorder: the runtime ranges, the libc entry patches, the
 * first /proc/self/io reading. Called once by spy_init with the guard held. */
void rec_io_init(void);

/* The calling thread's table, made on first use; NULL when memory is
 * short (the call then goes uncounted). */
struct rec_io_table *rec_io_table_new(void);

/* A slot for a site not seen before: describes fd (one IO_FD record),
 * claims a free slot or the overflow slot. Cannot fail. */
struct rec_io_slot *rec_io_slot_add(struct rec_io_table *tb, uintptr_t key,
				    int fd, unsigned fn, uint32_t stack);

/* Writes one slot's counters as an IO_SITE record and clears them. */
void rec_io_flush_slot(struct rec_io_table *tb, struct rec_io_slot *s);

/* Writes out every table (the process ends, execs or dies of a signal);
 * with end set, also the closing /proc/self/io reading. */
void rec_io_flush_all(int end);

/* The calling thread ends: its table is written out. */
void rec_io_thread_exit(void);

/* A thread starts (called by spy_thread_register): under syscalls=all
 * it is armed. Idempotent. */
void rec_io_thread_start(void);

/* The process ends: every table is written out, with the closing
 * /proc/self/io reading; calls after this are written one by one. */
void rec_io_process_exit(void);

/* Finds the real I/O functions and patches libc's entries (unless patch
 * is 0: then it makes no system call); returns the trace_io_fn bits whose
 * entries were patched. Defined in hook_io.c. */
unsigned rec_io_patch_libc(int patch);

/* Calls that went straight through (libspy's own, made with the guard
 * held, or while not tracing): not the program's, but the kernel counts
 * them, so the cross-check must too. */
extern uint64_t rec_io_passed_writes, rec_io_passed_reads;
static inline void rec_io_passed(unsigned fn)
{
	if (fn <= TRACE_IO_PWRITEV)
		__atomic_add_fetch(&rec_io_passed_writes, 1, __ATOMIC_RELAXED);
	else if (fn >= TRACE_IO_READ && fn <= TRACE_IO_PREADV)
		__atomic_add_fetch(&rec_io_passed_reads, 1, __ATOMIC_RELAXED);
}

/* Bumped when a descriptor number is closed (or replaced by dup2): a
 * site's calls on the number's next file count in a slot of their own,
 * described afresh. Indexed by fd & (REC_IO_FD_GENS - 1). */
#define REC_IO_FD_GENS 4096
extern uint32_t rec_io_fd_gen[REC_IO_FD_GENS];
static inline uint32_t rec_io_gen_of(int fd)
{
	return __atomic_load_n(&rec_io_fd_gen[(unsigned)fd & (REC_IO_FD_GENS - 1)],
			       __ATOMIC_RELAXED);
}
static inline void rec_io_fd_closed(int fd)
{
	__atomic_add_fetch(&rec_io_fd_gen[(unsigned)fd & (REC_IO_FD_GENS - 1)], 1,
			   __ATOMIC_RELAXED);
}

static inline int rec_io_in_runtime(uintptr_t ra)
{
	for (int i = 0; i < rec_io_n_runtime; i++)
		if (ra - rec_io_runtime_lo[i] <
		    rec_io_runtime_hi[i] - rec_io_runtime_lo[i])
			return 1;
	return 0;
}

static inline uint64_t rec_io_clock(void)
{
	return __builtin_ia32_rdtsc();
}

static inline struct rec_io_table *rec_io_table(void)
{
	struct rec_io_table *tb = rec_io_self;
	return SPY_LIKELY(tb != NULL) ? tb : rec_io_table_new();
}

static inline struct rec_io_slot *rec_io_find(struct rec_io_table *tb,
					      uintptr_t key, int fd,
					      unsigned fn)
{
	uintptr_t h = (key ^ (key >> 17) ^ ((uintptr_t)(uint32_t)fd * 0x9e3779b1u) ^
		       fn) & (REC_IO_SLOTS - 1);
	for (int i = 0; i < REC_IO_PROBES; i++) {
		struct rec_io_slot *s = &tb->slots[(h + (uintptr_t)i) & (REC_IO_SLOTS - 1)];
		if (s->key == key && s->fd == fd && s->fn == fn &&
		    s->gen == rec_io_gen_of(fd))
			return s;
		if (!s->key)
			return NULL;
	}
	return NULL;
}

static inline unsigned rec_io_bucket(uint64_t size)
{
	unsigned b = size ? 64u - (unsigned)__builtin_clzll(size) : 0;
	return b < TRACE_IO_BUCKETS ? b : TRACE_IO_BUCKETS - 1;
}

/* Adds one call that asked for size bytes and returned r. */
static inline void rec_io_count(struct rec_io_table *tb,
				struct rec_io_slot *s, unsigned fn,
				uint64_t size, int64_t r, uint64_t ticks,
				int timed)
{
	s->used = 1;
	s->calls++;
	if (r > 0)
		s->bytes += (uint64_t)r;
	else if (r < 0)
		s->errors++;
	if (size > s->max_size)
		s->max_size = size;
	s->hist[rec_io_bucket(size)]++;
	if (timed) {
		s->timed_calls++;
		s->timed_ticks += ticks;
	}
	if (fn <= TRACE_IO_PWRITEV)
		tb->seen_writes++;
	else if (fn >= TRACE_IO_READ && fn <= TRACE_IO_PREADV)
		tb->seen_reads++;
}

/* The body of every I/O hook, after spy_hook_enter() succeeded: counts
 * the call made by `call` (an expression of type T, assigned to r) at the
 * hook's return address. A macro, so that the stack is captured in the
 * hook itself. Leaves the hook (guard, errno) and returns r. The call is
 * parked (SPY_PARKED) where it may block. */
#define REC_IO_HOOK(T, fn_code, fd_, size_, call)                              \
	do {                                                                   \
		uintptr_t key_ = (uintptr_t)__builtin_return_address(0);       \
		struct rec_io_table *tb_ = rec_io_table();                     \
		if (SPY_UNLIKELY(!tb_)) {                                      \
			T r_ = call;                                           \
			int e_ = errno;                                        \
			spy_hook_leave();                                      \
			errno = e_;                                            \
			return r_;                                             \
		}                                                              \
		uint32_t stack_ = 0;                                           \
		/* Calls after the end (stdio's flush at exit) go without a   \
		 * stack: the unwinder would only find exit's frames. */      \
		int deep_ = rec_io_in_runtime(key_) || rec_io_ending;          \
		if (deep_ && !rec_io_ending) {                                 \
			stack_ = spy_stack_capture();                          \
			if (stack_)                                            \
				key_ = REC_IO_STACK_KEY | stack_;              \
		}                                                              \
		int timed_ = !(++tb_->tick & REC_IO_SAMPLE_MASK) ||           \
			     rec_io_every;                                     \
		uint64_t t0_ = timed_ ? rec_io_clock() : 0;                    \
		T r_ = call;                                                   \
		uint64_t t1_ = timed_ ? rec_io_clock() : 0;                    \
		int e_ = errno;                                                \
		/* back from a parked call (SPY_PARKED) with tracing stopped:  \
		 * nothing more (describing a descriptor takes calls) */      \
		if (SPY_UNLIKELY(!spy_tracing)) {                              \
			spy_hook_leave();                                      \
			errno = e_;                                            \
			return r_;                                             \
		}                                                              \
		struct rec_io_slot *s_ = rec_io_find(tb_, key_, (fd_), fn_code); \
		if (SPY_UNLIKELY(!s_)) {                                       \
			if (!deep_)                                            \
				stack_ = spy_stack_capture();                  \
			s_ = rec_io_slot_add(tb_, key_, (fd_), fn_code, stack_); \
		}                                                              \
		rec_io_count(tb_, s_, fn_code, (uint64_t)(size_), (int64_t)r_, \
			     t1_ - t0_, timed_);                               \
		if (SPY_UNLIKELY(rec_io_ending | rec_io_every))                \
			rec_io_flush_slot(tb_, s_);                            \
		spy_hook_leave();                                              \
		errno = e_;                                                    \
		return r_;                                                     \
	} while (0)

#endif
