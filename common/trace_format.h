/* trace_format.h: the libspy trace format, shared by the writer (libspy.so)
 * and every reader (analyze, tests). docs/trace-format.md explains it in prose.
 *
 * A trace is a file header followed by regions. The file is cut into
 * regions of region_size bytes (counted from offset 0, so the first region
 * also holds the file header). A thread writes into a region of its own
 * through a shared mapping: records reach the page cache as they are
 * written, and a process killed at any instant leaves a readable trace.
 * A region holds chunks back to back, then zero bytes up to its end:
 *
 *   file   := file_header (region)*
 *   region := chunk* zero-padding          (exactly region_size bytes;
 *                                            the last region may be short)
 *   chunk  := chunk_header record*          (payload_len bytes of records)
 *   record := kind:u8  body_len:varint  body   (body_len bytes)
 *             (kind 0: an unfinished record, skipped)
 *
 * Where a chunk header would start and its first byte is 0, the rest of the
 * region is padding. One chunk holds records of one thread, in order.
 * A record is written body first, then payload_len is raised to cover it,
 * then its kind byte (0 until then) is set: a writer that dies at any
 * instant leaves either bytes past payload_len that start with 0, or a
 * covered record of kind 0, which readers skip as unfinished.
 *
 * All fixed-width integers are little-endian. "varint" is unsigned LEB128
 * (at most 10 bytes); "svarint" is a zigzag-encoded signed varint; "str" is
 * varint length followed by that many bytes (no terminator).
 *
 * Inside a chunk two running values shorten records:
 *   - time: each record body starts with dt:varint, nanoseconds since the
 *     previous record of the chunk (the first since chunk_header.base_ns);
 *   - address: fields marked ":delta" are svarint deltas from the previous
 *     ":delta" field of the same chunk (starting at 0), and update it.
 *     No other field touches that running value, and kinds added later
 *     never use ":delta" fields (a reader that skips them stays in step).
 * Every record body, of every kind, starts with dt.
 * A reader that meets a kind it does not know skips body_len bytes; new kinds
 * may be added without changing the major version. Records only grow at their
 * end: a reader ignores bytes past the fields it knows.
 */
#ifndef SPY_TRACE_FORMAT_H
#define SPY_TRACE_FORMAT_H

#include <stdint.h>

#define TRACE_MAGIC "SPYTRACE" /* 8 bytes, no terminator in the file */
#define TRACE_MAGIC_LEN 8
#define TRACE_VERSION 2u      /* bumped when an old reader would misread:
				 2 added ALLOC_SHORT and FREE_SHORT, which
				 move the running address */
#define TRACE_FILE_HEADER_SIZE 24
#define TRACE_CHUNK_MAGIC 0x4b4e4843u /* "CHNK" */
#define TRACE_CHUNK_HEADER_SIZE 24
#define TRACE_MAX_CHUNK (16u << 20) /* a chunk never crosses its region */
#define TRACE_MAX_FRAMES 256
/* Buckets of a hole-size histogram (HEAP_INFO): [2^b, 2^(b+1)) bytes. */
#define TRACE_HOLE_BUCKETS 40

/* file_header (24 bytes): magic[8], version:u32, header_size:u32 (24),
 * region_size:u32 (a power of two, 4 KiB to 16 MiB), reserved:u32 (0). */
#define TRACE_REGION_MIN 4096u

/* In a module or end-map record's prot: anonymous memory that is libspy's
 * own, not the program's (its tables, the heap shadow, signal stacks). */
#define TRACE_PROT_LIBSPY 16u
#define TRACE_REGION_MAX (16u << 20)

/* chunk_header (24 bytes): magic:u32 (TRACE_CHUNK_MAGIC), payload_len:u32,
 * tid:u32 (kernel thread id of the writer), flags:u32 (0), base_ns:u64
 * (CLOCK_MONOTONIC time the chunk's first dt counts from). */

enum trace_kind {
	/* The first record of every trace. Body: dt, pid, ppid, cause
	 * (trace_cause), start_unix_ns (CLOCK_REALTIME), start_mono_ns
	 * (CLOCK_MONOTONIC at the same moment), exe:str, argc, argv:str*argc,
	 * parent_trace:str (the trace of the process this one was forked or
	 * exec'd from, "" if none), stack_depth, flags (trace_process_flag). */
	TRACE_PROCESS = 1,
	/* One line of /proc/self/maps. Body: dt, snapshot, start, end,
	 * file_offset, prot (r=4 w=2 x=1, p=8 when private, TRACE_PROT_LIBSPY
	 * for anonymous memory libspy mapped for itself), path:str (a file
	 * path, "[heap]", "[stack]", "" for anonymous memory, ...), file_size,
	 * file_mtime_ns (the file's size and modification time when mapped, so
	 * a reader can tell a file rebuilt since; both 0 when unknown, and
	 * absent from traces of older writers). A snapshot
	 * is taken at start and after each dlopen; a later snapshot replaces an
	 * earlier one for the addresses it covers. Only paths starting with '/'
	 * name files to symbolize from. */
	TRACE_MODULE = 2,
	/* An interned call stack. Body: dt, id, n, then n frames: the first
	 * as varint, each next one as svarint delta from the one before.
	 * Frames run from the innermost call outwards and are return addresses
	 * (the reader looks up address-1). Ids start at 1; 0 means "no stack".
	 * A stack may be defined after (in file order) its first use, by
	 * another thread's chunk. */
	TRACE_STACK = 3,
	/* A thread's first record. Body: dt, tid, creator tid (0 if unknown). */
	TRACE_THREAD = 4,
	/* A block was handed out. Body: dt, fn (trace_alloc_fn), addr:delta,
	 * size, stack, align (0 when the function takes none). */
	TRACE_ALLOC = 5,
	/* A block is about to be released. Body: dt, fn, addr:delta, stack. */
	TRACE_FREE = 6,
	/* The common heap records in short form, written whole in a few
	 * stores (version 2): a block 16-byte aligned within 128 MiB of the
	 * thread's previous address, of size under 64 KiB, recorded within
	 * 16 µs of the thread's previous record. Each stands for the ALLOC
	 * or FREE record of the same fields (readers read it as one, and
	 * count it as one). Fixed-width fields:
	 *   ALLOC_SHORT body: dt, fn:u8, addr16:i24, size:u16, stack
	 *   FREE_SHORT body:  dt, fn:u8, addr16:i24, stack
	 * dt is a varint of always 2 bytes (under 16384 ns). addr16 is an
	 * address ":delta" in units of 16 bytes: the running address moves
	 * by 16 * addr16. stack is the rest of the body: 0 bytes (no stack),
	 * or the stack id as u16 or u24. These two kinds never grow. */
	TRACE_ALLOC_SHORT = 16,
	TRACE_FREE_SHORT = 17,
	/* realloc/reallocarray moved or resized a block. Body: dt, fn,
	 * old_addr:delta, new_addr:delta, size, stack. new_addr 0 with size>0
	 * means the call failed and old_addr stays valid. */
	TRACE_REALLOC = 7,
	/* The process forked. Body: dt, child_pid. */
	TRACE_FORK = 8,
	/* The process is about to exec. Body: dt, path:str. If the exec fails
	 * the trace continues. */
	TRACE_EXEC = 9,
	/* The process ends. Body: dt, how (trace_exit_how), status, signal. */
	TRACE_EXIT = 10,
	/* A fault the process dies of (SIGSEGV, SIGBUS, SIGFPE, SIGILL) or
	 * its own abort(), written just before the EXIT record. Body: dt,
	 * signal, code (siginfo's si_code), addr (si_addr: the address a
	 * SIGSEGV or SIGBUS was about; for the others the instruction's),
	 * pc (the faulting instruction, 0 if unknown), access
	 * (trace_crash_access), stack (captured in the signal handler: the
	 * frames from the faulting one outwards follow the signal
	 * trampoline; 0 when libspy's own code was running). */
	TRACE_CRASH = 15,
	/* Something libspy itself wants the reader to know.
	 * Body: dt, level (0 info, 1 warning), text:str. */
	TRACE_NOTE = 11,
	/* dlopen is about to load a library. Body: dt, path:str. A fresh
	 * module snapshot follows before the next stack. */
	TRACE_DLOPEN = 12,
	/* The clean end of a trace; a trace without one was cut short. Body: dt.
	 * Records may still follow it: events that happen after libspy's final
	 * flush (late destructors, stdio's flush at exit) are written one by
	 * one. A reader keeps reading past it. */
	TRACE_END = 13,
	/* One line of /proc/self/maps as the process ends (exit, _exit, a
	 * fatal signal): the map at the end of the run, for the views of the
	 * address space. Never used to symbolize (a library unloaded before
	 * the end is gone from it). Body: dt, start, end, file_offset, prot,
	 * path:str, as in a module record. Traces of older writers have none. */
	TRACE_END_MAP = 14,

	/* ---- 40-59: system calls and I/O (rec_io) ---- */
	/* Totals of one kind of I/O call made by one thread from one call
	 * site on one descriptor, since the previous IO_SITE record of the
	 * same (tid, fn, fd, desc, stack): a reader adds them up. Written at
	 * thread exit, at process exit, before exec, before a fatal signal,
	 * and (once the process is ending) after every call.
	 * Body: dt, tid, fn (trace_io_fn), fd, desc (an IO_FD id, 0 if not
	 * described), stack, calls, bytes (transferred, from the results),
	 * errors (calls that returned -1), timed_calls, timed_ns (wall time
	 * spent in the timed calls, a sample of calls), max_size (largest
	 * size asked for), nbuckets, then nbuckets counts: bucket 0 holds
	 * calls asking for 0 bytes, bucket b > 0 calls asking for
	 * [2^(b-1), 2^b) bytes. */
	TRACE_IO_SITE = 40,
	/* What a descriptor was when a call site first used it.
	 * Body: dt, id (from 1, unique in the trace), fd, type (trace_fd_type),
	 * path:str (a file path, "/dev/pts/0", "pipe:[123]", "socket:[45]"). */
	TRACE_IO_FD = 41,
	/* The kernel's I/O counters of the whole process (/proc/self/io), at
	 * start and at the end, and the calls libspy's hooks saw by then.
	 * Body: dt, phase (0 start, 1 end), rchar, wchar, syscr, syscw,
	 * read_bytes, write_bytes, seen_writes (write-class calls the kernel
	 * counts in syscw: write, writev, pwrite*, pwritev*), seen_reads
	 * (read, readv, pread*, preadv*), own_reads (read calls libspy made
	 * itself, e.g. of /proc files), complete (trace_io_proc_complete;
	 * absent in traces before it: complete). */
	TRACE_IO_PROC = 42,
	/* How I/O calls were intercepted. Body: dt, flags (trace_io_mode),
	 * patched (bit f set: libc's entry of trace_io_fn f was patched, so
	 * its calls from inside libc are seen too). */
	TRACE_IO_MODE = 43,
	/* syscalls=all: every system call one thread made, by number, since
	 * its previous SYSCALLS record. Body: dt, tid, n, then n times: nr,
	 * calls, errors (results in -4095..-1). */
	TRACE_SYSCALLS = 44,

	/* Locks (rec_locks.h). "lock" is the lock object's address
	 * (absolute, never :delta); "flags" is a trace_lock_type in its low
	 * 4 bits and a trace_lock_how above them (type | how << 4).
	 * A lock was taken. Body: dt, lock, flags, stack, wait_ns (time spent
	 * blocked, 0 when it was free at once), late_ns (the lock was really
	 * taken this long before the record's time; may be absent: 0).
	 * Written after the real call succeeded. */
	TRACE_LOCK_ACQUIRE = 20,
	/* A thread is about to block on a lock someone else holds (the
	 * acquisition attempt, before the real call). Body: dt, lock, flags,
	 * stack. An ACQUIRE or a FAIL of the same lock by the same thread
	 * follows unless the thread never got it. */
	TRACE_LOCK_WAIT = 21,
	/* A lock is about to be released. Body: dt, lock. */
	TRACE_LOCK_RELEASE = 22,
	/* A lock call failed: a trylock found the lock busy, a timed lock
	 * timed out, or an error. Body: dt, lock, flags, errno value, stack. */
	TRACE_LOCK_FAIL = 23,
	/* A lock was initialised: a new generation of the address.
	 * Body: dt, lock, type (trace_lock_type). */
	TRACE_LOCK_INIT = 24,
	/* A lock is about to be destroyed. Body: dt, lock. */
	TRACE_LOCK_DESTROY = 25,
	/* A thread is about to wait on a condition variable, which releases
	 * mutex; a LOCK_ACQUIRE of mutex with how TRACE_LOCK_COND follows when
	 * the wait returns. Body: dt, cond, mutex, timed (0/1), stack. */
	TRACE_COND_WAIT = 26,
	/* libspy saw a deadlock form: a cycle of threads, each waiting for a
	 * lock the next one holds. Body: dt, on_deadlock action (0 abort,
	 * 1 wait), n (threads), then per thread: tid, lock waited for, flags,
	 * wait stack, wait_since (absolute CLOCK_MONOTONIC ns), n_held, then
	 * n_held times (lock, flags, stack of its acquisition). The first
	 * thread is the one that closed the cycle. */
	TRACE_DEADLOCK = 27,
	/* A lock taken and released with no other lock call of the thread in
	 * between (the common, cheap case: one record instead of an ACQUIRE and
	 * a RELEASE). Body: dt (the release), lock, flags, stack, wait_ns,
	 * hold_ns (it was taken hold_ns before the record's time). */
	TRACE_LOCK_PAIR = 28,
	/* A run of lock pairs of one thread, each like a LOCK_PAIR with the
	 * same lock, flags and stack, taken while holding no other lock and
	 * never waited for, counted instead of written one by one (a run
	 * lasts about 10 ms at most). Body: dt, lock, flags, stack, count,
	 * hold_total_ns, hold_max_ns, span_ns (first acquisition to last
	 * timed release), ago_ns (that release was this long before the
	 * record's time), timed (how many of the pairs had their hold
	 * measured; may be absent: all of them). When timed < count,
	 * hold_total_ns is an estimate from the timed pairs and hold_max_ns
	 * the longest of them. */
	TRACE_LOCK_PAIRS = 29,
	/* A lock used against its rules (trace_lock_misuse what): unlocked
	 * by a thread that does not hold it, or destroyed while locked.
	 * Body: dt, lock, what, owner (the holder's tid: for a mutex the one
	 * glibc keeps in it; 0 when none or unknown), stack, type (the
	 * lock's trace_lock_type; for an rwlock how its holder holds it:
	 * READ, WRITE, or RWLOCK when nobody does; absent in older traces:
	 * a mutex). At most 64 a process. */
	TRACE_LOCK_MISUSE = 30,

	/* Kinds are numbered in ranges, one per recorder, so that recorders
	 * grow without renumbering one another:
	 *   1-19   process, modules, stacks, threads' first records, heap core
	 *   20-39  locks and condition variables        (rec_locks)
	 *   40-59  system calls and I/O                 (rec_io)
	 *   60-79  threads, scheduling, the machine     (rec_threads)
	 *   80-99  heap checks: bad frees, quarantine, guard, leaks (rec_heap)
	 * A kind's name goes in trace_kind_name below. */

	/* A free-class call that libspy did not pass on to the allocator.
	 * Body: dt, fn (trace_alloc_fn; TRACE_FN_FREE also for operator
	 * delete), addr, stack, what (trace_bad_free), base (the start of the
	 * live block addr points into, for TRACE_BAD_INTERIOR; else 0). */
	TRACE_BAD_FREE = 80,
	/* A freed block held in quarantine was written to after its free.
	 * Body: dt, addr, size, detail:str where detail is: changed (bytes
	 * that differ from the fill pattern), first, last (their offsets),
	 * then up to 32 bytes as found from offset first. Written when the
	 * block leaves the quarantine or at exit. */
	TRACE_HEAP_UAF = 81,
	/* One block live at exit, as the leak scan classed it.
	 * Body: dt, addr, size, class (trace_leak_class). */
	TRACE_LEAK = 82,
	/* The leak scan ran (its LEAK records precede it). Body: dt, blocks,
	 * root_bytes (bytes of roots scanned), scanned_bytes (roots and
	 * blocks), ns (time it took), inherited (in a forked child: the live
	 * blocks its parent handed out, left to the parent's trace and not
	 * classed; may be absent: 0). */
	TRACE_LEAK_SCAN = 83,
	/* The program touched inaccessible pages of a block: with guard=1 a
	 * guarded block's (it is about to die of the SIGSEGV), or the inner
	 * pages of a big block held in quarantine (the pages were made
	 * accessible again and the program went on). Body: dt, fault_addr,
	 * pc (the faulting instruction), what (trace_fault_what), block (its
	 * start, 0 if unknown), size, stack (as captured in the signal
	 * handler: the frames from the faulting one outwards follow the
	 * signal trampoline). */
	TRACE_GUARD_FAULT = 84,
	/* A malloc-family call returned NULL (or posix_memalign an error).
	 * Body: dt, fn (trace_alloc_fn), size, stack; then, for calloc and
	 * reallocarray in traces written since, count and each (their two
	 * size arguments; size is 2^64-1 when the product does not fit). A
	 * HEAP_INFO follows. */
	TRACE_ALLOC_FAIL = 85,
	/* The allocator's own view, after an ALLOC_FAIL, at exit, and every
	 * heap_every ms. Body: dt, reason (0 exit, 1 after an allocation
	 * failed, 2 an interval snapshot), then
	 * glibc's mallinfo2: arena (bytes of heap from brk), ordblks (free
	 * chunks), fordblks (free bytes), hblks, hblkhd (blocks and bytes
	 * mapped on their own), uordblks (bytes in use), keepcost (free bytes
	 * at the top); rss (bytes), as_limit (RLIMIT_AS, 0 if none),
	 * vm_size (bytes of address space in use); then, in traces written
	 * since, allocator (0 glibc, 1 jemalloc) and for jemalloc its
	 * stats.allocated, active, metadata, resident, mapped, retained;
	 * then, in traces written since and when jemalloc keeps statistics,
	 * its free space: free_regions (in its slabs), their bytes, the
	 * largest region's size, free_extents (dirty or muzzy), their bytes,
	 * the largest extent (bytes, the mean of its size class), and a
	 * histogram of all these holes: n, then n pairs of bucket (holes of
	 * [2^b, 2^(b+1)) bytes, b < TRACE_HOLE_BUCKETS) and count. */
	TRACE_HEAP_INFO = 86,
	/* A block was given back by a deallocation of another family (new[]
	 * freed with delete or free, malloc'd memory with delete, ...); the
	 * free was passed on. Body: dt, fn, addr, alloc_family, free_family
	 * (0 malloc/free, 1 new/delete, 2 new[]/delete[]), stack[, offset]:
	 * a pointer offset bytes into the block was given (a new[] array's
	 * first element, behind the element count), and the block itself was
	 * passed on. */
	TRACE_MISMATCHED_FREE = 87,
	/* The header glibc keeps just before a block was found written over:
	 * something wrote past the end of the block before it (or before the
	 * block's own start). Found when the block was freed (the free is
	 * then passed on, for glibc to react as it would without libspy),
	 * when it left the quarantine, or by the leak scan at exit. Body: dt,
	 * addr (the block), before (the start of the nearest block below it,
	 * 0 if none is known), header (the word as found), stack (of the free
	 * that found it; 0 otherwise). */
	TRACE_HEAP_DAMAGE = 88,
	/* The canary in a block's slack (the bytes past the size asked for:
	 * spy_canary.h) was found changed: the block was written
	 * past its end. Found at its free or realloc, or at exit. Body: dt,
	 * addr, usable (the allocator's size of the block), tail:str (its
	 * last min(64, usable) bytes as found), stack (of the free or
	 * realloc; 0 at exit). The canary, for a block of asked bytes: with
	 * n = usable - asked up to 8, bytes asked..usable-2 are 0xac and the
	 * last is 0xc0 | n; with more, 0xac from asked on (at most 256
	 * bytes) and the last 8 bytes hold asked | h << 40 | 0xa5 << 56
	 * (little endian), h being the top 16 bits of asked times
	 * 0x9e3779b97f4a7c15 (modulo 2^64). */
	TRACE_HEAP_OVERRUN = 89,
	/* --- rec_threads (60-79) --- */
	/* pthread_create returned, in the creating thread; stamped before the
	 * call. Body: dt, handle (the pthread_t), start routine address,
	 * stack_size (bytes reserved for the new thread's stack), guard_size,
	 * stack_from (trace_stack_source), create_ns (time inside the real
	 * pthread_create), result (0 or the error number), stack, detached
	 * (1: created detached; absent in older traces). */
	TRACE_THREAD_CREATE = 60,
	/* A thread created through pthread_create starts running its start
	 * routine. Body: dt, tid, creator tid, handle, stack_top (an address
	 * near the top of its stack), stack_size, stack_from. */
	TRACE_THREAD_START = 61,
	/* A thread ends (or, for the main thread, the process does). Body: dt,
	 * tid, how (trace_thread_end), user_ns, system_ns, voluntary and
	 * involuntary context switches, minor and major page faults (these
	 * from getrusage RUSAGE_THREAD), run_ns and wait_ns (time on a CPU and
	 * time runnable but waiting for one, from /proc/self/task/TID/schedstat;
	 * both 0 when not read), lifetime_ns (0 if unknown), stack_size,
	 * sched (trace_sched_reading; absent in traces before it: there,
	 * run_ns or wait_ns nonzero means read). */
	TRACE_THREAD_END = 62,
	/* pthread_join (or a _np variant) returned; stamped before the
	 * call. Body: dt, handle, wait_ns (time blocked in it), result[,
	 * stack: when result is not 0, or call follows (0: none)[, call
	 * (trace_join_call; absent: pthread_join)]]. A pthread_tryjoin_np
	 * that found the thread running (EBUSY) is not written. */
	TRACE_THREAD_JOIN = 63,
	/* The process totals, written just before EXIT. Body: dt, user_ns,
	 * system_ns, voluntary and involuntary context switches, minor and
	 * major page faults (getrusage RUSAGE_SELF: every thread, dead or
	 * alive), max_rss_kb, threads_created, peak_live_threads, ncpu. */
	TRACE_PROCESS_STATS = 64,
	/* A SIGSEGV near a thread's stack limit: a stack overflow. Body: dt,
	 * tid, fault_addr, sp, stack_top, limit (bytes), limit_from
	 * (trace_stack_source), depth (frames unwound; 0 when unwinding
	 * failed), complete (1 when the unwinding reached the outermost frame),
	 * inner stack (the innermost frames), outer stack (the outermost
	 * frames, outermost last), period (frames in the repeating cycle, 0
	 * if none was seen), cycle_bytes (stack bytes one cycle takes). */
	TRACE_STACK_OVERFLOW = 65,
	/* clone called directly by the program, in the calling thread.
	 * Body: dt, flags, result (child tid, or 0 with the error number in
	 * err), err, stack. */
	TRACE_CLONE = 66,
	/* A sample of where a thread was (sample_hz=): its CPU-time timer
	 * fired. Body: dt, pc (the instruction about to run), then the
	 * general registers r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi,
	 * rbp, rbx, rdx, rax, rcx, rsp (x86-64). */
	TRACE_SAMPLE = 67,
	/* pthread_detach returned. Body: dt, handle, result. */
	TRACE_THREAD_DETACH = 68,
	TRACE_KIND_MAX = 128
};

enum trace_lock_type {
	TRACE_LOCK_MUTEX = 0,  /* pthread_mutex_t, mtx_t, std::mutex */
	TRACE_LOCK_READ = 1,   /* pthread_rwlock_t taken for reading */
	TRACE_LOCK_WRITE = 2,  /* pthread_rwlock_t taken for writing */
	TRACE_LOCK_SPIN = 3,   /* pthread_spinlock_t */
	TRACE_LOCK_RWLOCK = 4, /* init/destroy of a pthread_rwlock_t */
	TRACE_LOCK_SEM = 5,    /* sem_t: a successful wait takes it, a post
				* releases it (by any thread); readers decide
				* whether it behaved like a lock */
	TRACE_LOCK_JOIN = 6,   /* pthread_join, in a DEADLOCK record only: the
				* "lock" waited for is the joined thread's
				* pthread_t, "held" by that thread until it
				* ends */
};

enum trace_lock_misuse {
	TRACE_MISUSE_UNLOCK_FREE = 1,  /* unlock of a lock nobody holds */
	TRACE_MISUSE_UNLOCK_OTHER = 2, /* unlock of one another thread holds */
	TRACE_MISUSE_DESTROY_HELD = 3, /* destroy of a locked lock */
	TRACE_MISUSE_UNLOCK_FORKED = 4, /* unlock, in a fork child, of an
					 * rwlock write-locked before the fork
					 * (owner: the parent's thread) */
};

enum trace_join_call {
	TRACE_JOIN_PLAIN = 0, /* pthread_join */
	TRACE_JOIN_TRY = 1,   /* pthread_tryjoin_np */
	TRACE_JOIN_TIMED = 2, /* pthread_timedjoin_np */
	TRACE_JOIN_CLOCK = 3, /* pthread_clockjoin_np */
};

enum trace_lock_how {
	TRACE_LOCK_BLOCKING = 0, /* lock, rdlock, wrlock, spin_lock */
	TRACE_LOCK_TRY = 1,      /* the try variants: never block */
	TRACE_LOCK_TIMED = 2,    /* timed/clock variants: block for a while */
	TRACE_LOCK_COND = 3,     /* re-taken when a condition wait returns */
};

/* Where a thread's stack size came from (rec_threads). */
enum trace_stack_source {
	TRACE_STACK_FROM_RLIMIT = 0,  /* the main thread: ulimit -s (RLIMIT_STACK) */
	TRACE_STACK_FROM_DEFAULT = 1, /* pthread's default, taken from ulimit -s at start */
	TRACE_STACK_FROM_ATTR = 2,    /* pthread_attr_setstacksize or setstack */
};

/* Whether an io-proc end reading counts every thread that ended. */
enum trace_io_proc_complete {
	TRACE_IO_PROC_COMPLETE = 1,
	/* threads ended and child processes were reaped (not through fork)
	 * in between: the ended threads cannot be told apart from them */
	TRACE_IO_PROC_INCOMPLETE = 2,
};

/* Whether a thread_end's run_ns and wait_ns were read: rec_threads reads
 * schedstat for every thread that lived TRACE_SCHED_ALWAYS_NS or more and
 * for a sample of shorter ones (the reader scales each group apart). */
#define TRACE_SCHED_ALWAYS_NS 100000000u
enum trace_sched_reading {
	TRACE_SCHED_READ = 1,     /* read from schedstat */
	TRACE_SCHED_SKIPPED = 2,  /* not read (sampled out, thread_sched=0, unreadable) */
};

/* How a thread ended (rec_threads). */
enum trace_thread_end {
	TRACE_THREAD_RETURNED = 0,    /* its start routine returned */
	TRACE_THREAD_EXITED = 1,      /* it called pthread_exit */
	TRACE_THREAD_CANCELLED = 2,   /* cancelled (ended without either) */
	TRACE_THREAD_AT_EXIT = 3,     /* still running when the process ended */
	TRACE_THREAD_UNSEEN = 4,      /* not started under libspy: how is unknown */
};

enum trace_cause {
	TRACE_CAUSE_START = 0, /* a process started with libspy preloaded */
	TRACE_CAUSE_FORK = 1,  /* a child of a traced process */
	TRACE_CAUSE_EXEC = 2,  /* a traced process exec'd this image */
};

enum trace_process_flag {
	TRACE_PF_STACKS = 1, /* call stacks were captured */
};

enum trace_alloc_fn {
	TRACE_FN_MALLOC = 0,
	TRACE_FN_CALLOC = 1,
	TRACE_FN_REALLOC = 2,
	TRACE_FN_REALLOCARRAY = 3,
	TRACE_FN_FREE = 4,
	TRACE_FN_POSIX_MEMALIGN = 5,
	TRACE_FN_ALIGNED_ALLOC = 6,
	TRACE_FN_MEMALIGN = 7,
	TRACE_FN_VALLOC = 8,
	TRACE_FN_PVALLOC = 9,
	TRACE_FN_MAX
};

enum trace_bad_free {
	TRACE_BAD_DOUBLE = 0,   /* the block was freed already (in quarantine) */
	TRACE_BAD_STACK = 1,    /* a stack address */
	TRACE_BAD_GLOBAL = 2,   /* a global, static or constant of a module */
	TRACE_BAD_INTERIOR = 3, /* inside a live block, not its start */
	TRACE_BAD_WILD = 4,     /* unmapped, or not aligned like any block */
};

/* What a GUARD_FAULT record's access was. */
enum trace_crash_access {
	TRACE_ACCESS_UNKNOWN = 0,
	TRACE_ACCESS_READ = 1,
	TRACE_ACCESS_WRITE = 2,
	TRACE_ACCESS_EXEC = 3,      /* an instruction fetch */
};

enum trace_fault_what {
	TRACE_FAULT_FREED = 0,      /* guard=1: a freed block */
	TRACE_FAULT_PAST_END = 1,   /* guard=1: past a block's end */
	TRACE_FAULT_HELD_READ = 2,  /* a read of a block in quarantine */
	TRACE_FAULT_HELD_WRITE = 3, /* a write to a block in quarantine */
	/* A system call given a block in quarantine as its buffer: the
	 * kernel read it (write, send) or wrote into it (read, recv). pc is
	 * the call's return address less one. */
	TRACE_FAULT_SYSCALL_READ = 4,
	TRACE_FAULT_SYSCALL_WRITE = 5,
};

enum trace_leak_class {
	TRACE_LEAK_DEFINITE = 0, /* no pointer to it anywhere */
	TRACE_LEAK_INDIRECT = 1, /* pointed to only from lost blocks */
	TRACE_LEAK_REACHABLE = 2, /* a root or a reachable block points to it */
};

enum trace_exit_how {
	TRACE_EXIT_RETURN = 0, /* main returned or exit() was called */
	TRACE_EXIT_UNDERSCORE = 1, /* _exit or _Exit */
	TRACE_EXIT_SIGNAL = 2, /* a fatal signal; status is 128+signal */
	TRACE_EXIT_UNKNOWN = 3, /* the destructor ran, exit status unseen */
};

/* I/O calls counted by rec_io (IO_SITE's fn). */
enum trace_io_fn {
	TRACE_IO_WRITE = 0,
	TRACE_IO_WRITEV = 1,
	TRACE_IO_PWRITE = 2,
	TRACE_IO_PWRITEV = 3,
	TRACE_IO_SEND = 4,
	TRACE_IO_SENDTO = 5,
	TRACE_IO_SENDMSG = 6,
	TRACE_IO_READ = 7,
	TRACE_IO_READV = 8,
	TRACE_IO_PREAD = 9,
	TRACE_IO_PREADV = 10,
	TRACE_IO_RECV = 11,
	TRACE_IO_RECVFROM = 12,
	TRACE_IO_RECVMSG = 13,
	TRACE_IO_FN_MAX
};

/* 1 for the calls that put data out (write .. sendmsg). */
static inline int trace_io_fn_is_write(unsigned fn)
{
	return fn <= TRACE_IO_SENDMSG;
}

/* What a descriptor is (IO_FD's type). */
enum trace_fd_type {
	TRACE_FD_OTHER = 0,
	TRACE_FD_FILE = 1,
	TRACE_FD_PIPE = 2,
	TRACE_FD_SOCKET = 3,
	TRACE_FD_TTY = 4,
	TRACE_FD_CHAR = 5,   /* a character device that is not a terminal */
	TRACE_FD_DIR = 6,
	TRACE_FD_TYPE_MAX
};

enum trace_io_mode {
	TRACE_IO_MODE_PLT = 1,     /* calls through the PLT are counted */
	TRACE_IO_MODE_PATCH = 2,   /* some libc entries were patched */
	TRACE_IO_MODE_SUD = 4,     /* syscalls=all: every system call */
	TRACE_IO_MODE_CALLS = 8,   /* io_every=1: an IO_SITE record per call */
};

#define TRACE_IO_BUCKETS 41

/* Names for people, indexed by the enums above. */
static inline const char *trace_kind_name(unsigned k)
{
	static const char *const names[TRACE_KIND_MAX] = {
		[TRACE_PROCESS] = "process",
		[TRACE_MODULE] = "module",
		[TRACE_STACK] = "stack",
		[TRACE_THREAD] = "thread",
		[TRACE_ALLOC] = "alloc",
		[TRACE_FREE] = "free",
		[TRACE_ALLOC_SHORT] = "alloc-short",
		[TRACE_FREE_SHORT] = "free-short",
		[TRACE_REALLOC] = "realloc",
		[TRACE_FORK] = "fork",
		[TRACE_EXEC] = "exec",
		[TRACE_EXIT] = "exit",
		[TRACE_NOTE] = "note",
		[TRACE_DLOPEN] = "dlopen",
		[TRACE_END] = "end",
		[TRACE_END_MAP] = "end-map",
		[TRACE_IO_SITE] = "io-site",
		[TRACE_IO_FD] = "io-fd",
		[TRACE_IO_PROC] = "io-proc",
		[TRACE_IO_MODE] = "io-mode",
		[TRACE_SYSCALLS] = "syscalls",
		[TRACE_BAD_FREE] = "bad-free",
		[TRACE_HEAP_UAF] = "heap-uaf",
		[TRACE_LEAK] = "leak",
		[TRACE_LEAK_SCAN] = "leak-scan",
		[TRACE_GUARD_FAULT] = "guard-fault",
		[TRACE_ALLOC_FAIL] = "alloc-fail",
		[TRACE_HEAP_INFO] = "heap-info",
		[TRACE_MISMATCHED_FREE] = "mismatched-free",
		[TRACE_HEAP_DAMAGE] = "heap-damage",
		[TRACE_HEAP_OVERRUN] = "heap-overrun",
		[TRACE_CRASH] = "crash",
		[TRACE_THREAD_CREATE] = "thread_create",
		[TRACE_THREAD_START] = "thread_start",
		[TRACE_THREAD_END] = "thread_end",
		[TRACE_THREAD_JOIN] = "thread_join",
		[TRACE_PROCESS_STATS] = "process_stats",
		[TRACE_STACK_OVERFLOW] = "stack_overflow",
		[TRACE_CLONE] = "clone",
		[TRACE_SAMPLE] = "sample",
		[TRACE_THREAD_DETACH] = "thread_detach",
		[TRACE_LOCK_ACQUIRE] = "lock-acquire",
		[TRACE_LOCK_WAIT] = "lock-wait",
		[TRACE_LOCK_RELEASE] = "lock-release",
		[TRACE_LOCK_FAIL] = "lock-fail",
		[TRACE_LOCK_INIT] = "lock-init",
		[TRACE_LOCK_DESTROY] = "lock-destroy",
		[TRACE_COND_WAIT] = "cond-wait",
		[TRACE_DEADLOCK] = "deadlock",
		[TRACE_LOCK_PAIR] = "lock-pair",
		[TRACE_LOCK_PAIRS] = "lock-pairs",
		[TRACE_LOCK_MISUSE] = "lock-misuse",
	};
	return k < TRACE_KIND_MAX && names[k] ? names[k] : "?";
}

/* The hole-size bucket of a hole of `bytes` (TRACE_HOLE_BUCKETS: holes of
 * [2^b, 2^(b+1)) bytes, the last taking all bigger ones). */
static inline unsigned trace_hole_bucket(uint64_t bytes)
{
	unsigned b = 0;
	while (bytes > 1 && b < TRACE_HOLE_BUCKETS - 1) {
		bytes >>= 1;
		b++;
	}
	return b;
}

/* The canary libspy writes in a block's slack (TRACE_HEAP_OVERRUN), for a
 * block of `asked` bytes out of `usable`: a slack of up to
 * TRACE_CANARY_SHORT bytes is FILL bytes then MARK | its length; a longer
 * one is FILL from `asked` on (at most TRACE_CANARY_FILL_MAX bytes) and,
 * in its last 8 bytes, trace_canary_tail(asked), little endian. */
#define TRACE_CANARY_FILL 0xac
#define TRACE_CANARY_MARK 0xc0
#define TRACE_CANARY_SHORT 8
#define TRACE_CANARY_FILL_MAX 256
#define TRACE_CANARY_ASKED_BITS 40

/* asked (40 bits), a 16-bit hash of it (a changed byte cannot make
 * another asked size that fits), 0xa5 in the top byte. */
static inline uint64_t trace_canary_tail(uint64_t asked)
{
	uint64_t hash = (asked * 0x9e3779b97f4a7c15ull) >> 48;
	return asked | hash << TRACE_CANARY_ASKED_BITS | (uint64_t)0xa5 << 56;
}

/* The byte the canary has at offset off (asked <= off < usable), or -1
 * where it leaves the slack alone. */
static inline int trace_canary_byte(uint64_t asked, uint64_t usable, uint64_t off)
{
	uint64_t slack = usable - asked;
	if (slack <= TRACE_CANARY_SHORT)
		return off == usable - 1 ? TRACE_CANARY_MARK | (int)slack
					 : TRACE_CANARY_FILL;
	if (off >= usable - 8)
		return (int)((trace_canary_tail(asked) >> (8 * (off - (usable - 8)))) & 0xff);
	return off - asked < TRACE_CANARY_FILL_MAX ? TRACE_CANARY_FILL : -1;
}

/* The kind a record stands for: a short form's long one. */
static inline unsigned trace_kind_canonical(unsigned k)
{
	return k == TRACE_ALLOC_SHORT ? TRACE_ALLOC
		: k == TRACE_FREE_SHORT ? TRACE_FREE : k;
}

/* 1 if this version of the format defines kind k. */
static inline int trace_kind_known(unsigned k)
{
	return trace_kind_name(k)[0] != '?';
}

static inline const char *trace_alloc_fn_name(unsigned fn)
{
	static const char *const names[TRACE_FN_MAX] = {
		"malloc", "calloc", "realloc", "reallocarray", "free",
		"posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
	};
	return fn < TRACE_FN_MAX ? names[fn] : "?";
}

static inline const char *trace_io_fn_name(unsigned fn)
{
	static const char *const names[TRACE_IO_FN_MAX] = {
		"write", "writev", "pwrite", "pwritev", "send", "sendto",
		"sendmsg", "read", "readv", "pread", "preadv", "recv",
		"recvfrom", "recvmsg",
	};
	return fn < TRACE_IO_FN_MAX ? names[fn] : "?";
}

static inline const char *trace_fd_type_name(unsigned t)
{
	static const char *const names[TRACE_FD_TYPE_MAX] = {
		"other", "file", "pipe", "socket", "terminal", "device",
		"directory",
	};
	return t < TRACE_FD_TYPE_MAX ? names[t] : "other";
}

#endif
