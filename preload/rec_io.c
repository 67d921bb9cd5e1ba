/* rec_io.c: the I/O recorder's slow paths: per-thread tables, descriptor
 * descriptions, writing totals out, /proc/self/io readings.
 * May run inside any hook or in a fatal-signal handler: no allocation but
 * mmap, no stdio, no lock (a table being written out is claimed with one
 * compare-and-swap, and nobody ever waits for it).
 */
#include "rec_io.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "spy_options.h"
#include "spy_signals.h"
#include "spy_sud.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"

__thread struct rec_io_table *rec_io_self
	__attribute__((tls_model("initial-exec")));
uintptr_t rec_io_runtime_lo[8], rec_io_runtime_hi[8];
int rec_io_n_runtime;
volatile int rec_io_ending;
int rec_io_every;
uint32_t rec_io_fd_gen[REC_IO_FD_GENS];

static struct rec_io_table *tables;     /* every table, never freed */
static uint32_t next_desc;              /* last IO_FD id handed out */
static uint64_t retired_writes, retired_reads;
uint64_t rec_io_passed_writes, rec_io_passed_reads;
static uint64_t tsc0, ns0;              /* for ticks -> ns */
static int end_written;
static unsigned patched_mask;

/* ---- tables ---------------------------------------------------------------- */

struct rec_io_table *rec_io_table_new(void)
{
	pid_t tid = spy_self.tid ? spy_self.tid : spy_sys_gettid();
	/* A table of a thread that ended is taken over first. */
	for (struct rec_io_table *t = __atomic_load_n(&tables, __ATOMIC_ACQUIRE);
	     t; t = t->next) {
		pid_t free_ = 0;
		if (__atomic_load_n(&t->tid, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&t->tid, &free_, tid, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			rec_io_self = t;
			return t;
		}
	}
	struct rec_io_table *t = spy_sys_mmap(sizeof(*t));
	if (!t)
		return NULL;
	t->tid = tid;
	struct rec_io_table *head = __atomic_load_n(&tables, __ATOMIC_RELAXED);
	do
		t->next = head;
	while (!__atomic_compare_exchange_n(&tables, &head, t, 1,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	rec_io_self = t;
	return t;
}

/* ---- descriptors ----------------------------------------------------------- */

static unsigned fd_type(int fd, const struct stat *st)
{
	switch (st->st_mode & S_IFMT) {
	case S_IFREG: return TRACE_FD_FILE;
	case S_IFDIR: return TRACE_FD_DIR;
	case S_IFIFO: return TRACE_FD_PIPE;
	case S_IFSOCK: return TRACE_FD_SOCKET;
	case S_IFCHR: {
		struct termios tio;
		return ioctl(fd, TCGETS, &tio) == 0 ? TRACE_FD_TTY : TRACE_FD_CHAR;
	}
	default: return TRACE_FD_OTHER;
	}
}

/* One IO_FD record saying what fd is now; returns its id, 0 if none. */
static uint32_t describe_fd(int fd)
{
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		return 0;
	char link[64], path[512];
	spy_format(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path));
	if (n < 0)
		n = 0;
	uint32_t id = __atomic_add_fetch(&next_desc, 1, __ATOMIC_RELAXED);
	uint8_t *p = spy_writer_begin(TRACE_IO_FD, 5 * TRACE_VARINT_MAX + (size_t)n);
	if (!p)
		return 0;
	p = trace_put_varint(p, id);
	p = trace_put_varint(p, (uint64_t)fd);
	p = trace_put_varint(p, fd_type(fd, &st));
	p = trace_put_str(p, path, (size_t)n);
	spy_writer_end(p);
	return id;
}

static void write_slot(pid_t tid, struct rec_io_slot *s);

struct rec_io_slot *rec_io_slot_add(struct rec_io_table *tb, uintptr_t key,
				    int fd, unsigned fn, uint32_t stack)
{
	uintptr_t h = (key ^ (key >> 17) ^ ((uintptr_t)(uint32_t)fd * 0x9e3779b1u) ^
		       fn) & (REC_IO_SLOTS - 1);
	struct rec_io_slot *s = NULL, *dead = NULL;
	for (int i = 0; i < REC_IO_PROBES; i++) {
		struct rec_io_slot *c = &tb->slots[(h + (uintptr_t)i) & (REC_IO_SLOTS - 1)];
		if (!c->key) {
			s = c;
			break;
		}
		/* A slot whose descriptor number was closed since can never
		 * be found again: a program that reuses one number for
		 * connection after connection would fill the table. */
		if (!dead && c->fd >= 0 && c->gen != rec_io_gen_of(c->fd))
			dead = c;
	}
	if (!s && dead) {
		write_slot(tb->tid, dead); /* its totals, before they go */
		s = dead;
	}
	int over = !s;
	if (over) {
		/* Full: the calls still count, in one slot per call without
		 * a site. */
		s = &tb->overflow[fn < TRACE_IO_FN_MAX ? fn : 0];
		if (s->key)
			return s;
		stack = 0;
		fd = -1;
	}
	s->gen = fd >= 0 ? rec_io_gen_of(fd) : 0;
	s->desc = describe_fd(fd);
	s->stack = stack;
	s->fd = fd;
	s->fn = (uint8_t)fn;
	s->key = over ? 1 : key;
	return s;
}

/* ---- writing totals -------------------------------------------------------- */

static uint64_t ticks_to_ns(uint64_t ticks)
{
	uint64_t dt = rec_io_clock() - tsc0, dn = spy_now_ns() - ns0;
	if (!dt || !dn)
		return ticks;
	return (uint64_t)((unsigned __int128)ticks * dn / dt);
}

static void write_slot(pid_t tid, struct rec_io_slot *s)
{
	if (!s->used)
		return;
	uint8_t *p = spy_writer_begin(TRACE_IO_SITE,
				      (13 + TRACE_IO_BUCKETS) * TRACE_VARINT_MAX);
	if (!p)
		return;
	unsigned nb = TRACE_IO_BUCKETS;
	while (nb > 0 && !s->hist[nb - 1])
		nb--;
	p = trace_put_varint(p, (uint64_t)tid);
	p = trace_put_varint(p, s->fn);
	p = trace_put_varint(p, (uint64_t)(uint32_t)s->fd);
	p = trace_put_varint(p, s->desc);
	p = trace_put_varint(p, s->stack);
	p = trace_put_varint(p, s->calls);
	p = trace_put_varint(p, s->bytes);
	p = trace_put_varint(p, s->errors);
	p = trace_put_varint(p, s->timed_calls);
	p = trace_put_varint(p, ticks_to_ns(s->timed_ticks));
	p = trace_put_varint(p, s->max_size);
	p = trace_put_varint(p, nb);
	for (unsigned b = 0; b < nb; b++)
		p = trace_put_varint(p, s->hist[b]);
	spy_writer_end(p);
	s->used = 0;
	s->calls = s->bytes = s->errors = s->timed_calls = s->timed_ticks = 0;
	s->max_size = 0;
	for (unsigned b = 0; b < TRACE_IO_BUCKETS; b++)
		s->hist[b] = 0;
}

void rec_io_flush_slot(struct rec_io_table *tb, struct rec_io_slot *s)
{
	write_slot(tb->tid, s);
}

static void flush_table(struct rec_io_table *tb)
{
	int idle = 0;
	if (!__atomic_compare_exchange_n(&tb->flushing, &idle, 1, 0,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return; /* someone else is writing it out right now */
	pid_t tid = __atomic_load_n(&tb->tid, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < REC_IO_SLOTS; i++)
		if (tb->slots[i].key)
			write_slot(tid, &tb->slots[i]);
	for (unsigned i = 0; i < TRACE_IO_FN_MAX; i++)
		write_slot(tid, &tb->overflow[i]);
	__atomic_store_n(&tb->flushing, 0, __ATOMIC_RELEASE);
}

/* ---- /proc/self/io --------------------------------------------------------- */

static void seen_totals(uint64_t *writes, uint64_t *reads)
{
	*writes = __atomic_load_n(&retired_writes, __ATOMIC_RELAXED) +
		  __atomic_load_n(&rec_io_passed_writes, __ATOMIC_RELAXED);
	*reads = __atomic_load_n(&retired_reads, __ATOMIC_RELAXED) +
		 __atomic_load_n(&rec_io_passed_reads, __ATOMIC_RELAXED);
	for (struct rec_io_table *t = __atomic_load_n(&tables, __ATOMIC_ACQUIRE);
	     t; t = t->next) {
		*writes += t->seen_writes;
		*reads += t->seen_reads;
	}
}

/* The kernel's counters of threads (syscr, syscw, rchar, wchar,
 * read_bytes, write_bytes), summed over the process's threads: the live
 * ones read at the moment, the ended ones as below.
 *
 * Reading /proc/thread-self/io as each thread ends costs it several
 * microseconds, so ended threads are counted from the process-wide
 * /proc/self/io instead, which holds every ended thread plus every child
 * process reaped: (whole - live threads) now, less the same at the start
 * reading, is what the threads that ended since then did, as long as no
 * child was reaped meanwhile (getrusage RUSAGE_CHILDREN unchanged). Once
 * the process forks, children will be reaped, so from its first fork on
 * each ending thread reads its own counters into dead_kernel again. */
enum { K_RCHAR, K_WCHAR, K_SYSCR, K_SYSCW, K_RBYTES, K_WBYTES, K_N };
static uint64_t dead_kernel[K_N];
static uint64_t own_reads;
static uint64_t base_dead[K_N];     /* whole - live at the start reading */
static struct rusage base_children; /* RUSAGE_CHILDREN then */
static uint64_t unread_ends;        /* 1: a thread ended without its own reading */
static int per_thread_io;           /* set at the first fork */
static int io_incomplete;           /* some ended threads cannot be counted */

static int task_io(const char *path, uint64_t k[K_N])
{
	char buf[512];
	/* One read gets it all (it is ~100 bytes); the kernel counts that
	 * read too, which the record says. */
	ssize_t n = spy_read_once(path, buf, sizeof(buf));
	if (n < 0)
		return -1;
	__atomic_add_fetch(&own_reads, 1, __ATOMIC_RELAXED);
	if (n == 0)
		return -1;
	k[K_RCHAR] += spy_proc_field(buf, "rchar");
	k[K_WCHAR] += spy_proc_field(buf, "wchar");
	k[K_SYSCR] += spy_proc_field(buf, "syscr");
	k[K_SYSCW] += spy_proc_field(buf, "syscw");
	k[K_RBYTES] += spy_proc_field(buf, "read_bytes");
	k[K_WBYTES] += spy_proc_field(buf, "write_bytes");
	return 0;
}

static int add_task_io(const char *tid, void *k)
{
	char path[64];
	spy_format(path, sizeof(path), "/proc/self/task/%s/io", tid);
	task_io(path, k);
	return 0;
}

/* Sums the counters of every thread the process has now. */
static void live_threads_io(uint64_t k[K_N])
{
	spy_proc_each_task(add_task_io, k);
}

/* What the threads that ended since the start reading did, into k (from
 * /proc/self/io: see above); -1 when that cannot be told. live holds the
 * live threads' counters, read just before. */
static int ended_since_start(const uint64_t live[K_N], uint64_t k[K_N])
{
	struct rusage ch;
	uint64_t whole[K_N] = { 0 };
	if (getrusage(RUSAGE_CHILDREN, &ch) != 0 || memcmp(&ch, &base_children, sizeof(ch)) != 0 ||
	    task_io("/proc/self/io", whole) != 0)
		return -1;
	for (int i = 0; i < K_N; i++) {
		uint64_t dead = whole[i] > live[i] ? whole[i] - live[i] : 0;
		k[i] += dead > base_dead[i] ? dead - base_dead[i] : 0;
	}
	return 0;
}

/* Writes an IO_PROC record; phase 0 (start) or 1 (end). */
static void proc_reading(unsigned phase)
{
	uint64_t k[K_N] = { 0 }, live[K_N] = { 0 };
	live_threads_io(live);
	if (phase == 0) {
		/* The baseline of ended_since_start: what the process's ended
		 * threads and reaped children (and an image it replaced by
		 * exec) had done before the start. */
		uint64_t whole[K_N] = { 0 };
		getrusage(RUSAGE_CHILDREN, &base_children);
		task_io("/proc/self/io", whole);
		for (int i = 0; i < K_N; i++)
			base_dead[i] = whole[i] > live[i] ? whole[i] - live[i] : 0;
	} else if (!__atomic_load_n(&per_thread_io, __ATOMIC_SEQ_CST) &&
		   __atomic_load_n(&unread_ends, __ATOMIC_ACQUIRE) &&
		   ended_since_start(live, k) != 0) {
		io_incomplete = 1;
	}
	for (int i = 0; i < K_N; i++)
		k[i] += live[i] + __atomic_load_n(&dead_kernel[i], __ATOMIC_RELAXED);
	uint64_t w, r;
	seen_totals(&w, &r);
	uint8_t *p = spy_writer_begin(TRACE_IO_PROC, 12 * TRACE_VARINT_MAX);
	if (!p)
		return;
	p = trace_put_varint(p, phase);
	for (int i = 0; i < K_N; i++)
		p = trace_put_varint(p, k[i]);
	p = trace_put_varint(p, w);
	p = trace_put_varint(p, r);
	p = trace_put_varint(p, __atomic_load_n(&own_reads, __ATOMIC_RELAXED));
	p = trace_put_varint(p, io_incomplete ? TRACE_IO_PROC_INCOMPLETE
					      : TRACE_IO_PROC_COMPLETE);
	spy_writer_end(p);
}

/* Before the process's first fork: threads that end from now on read
 * their own counters, and those that ended before are counted at once,
 * while no child can have been reaped by fork's doing. A thread ending
 * during this very switch may be counted as live here and then missed. */
static void before_fork(void)
{
	if (__atomic_exchange_n(&per_thread_io, 1, __ATOMIC_SEQ_CST))
		return;
	if (!__atomic_load_n(&unread_ends, __ATOMIC_ACQUIRE))
		return;
	uint64_t live[K_N] = { 0 }, k[K_N] = { 0 };
	/* fork's handlers run outside any hook: the guard keeps these
	 * reads from being recorded as the program's. */
	spy_self.guard++;
	live_threads_io(live);
	if (ended_since_start(live, k) != 0) {
		io_incomplete = 1;
	} else {
		for (int i = 0; i < K_N; i++)
			__atomic_add_fetch(&dead_kernel[i], k[i], __ATOMIC_RELAXED);
		__atomic_store_n(&unread_ends, 0, __ATOMIC_RELEASE);
	}
	spy_self.guard--;
}

void rec_io_flush_all(int end)
{
	for (struct rec_io_table *t = __atomic_load_n(&tables, __ATOMIC_ACQUIRE);
	     t; t = t->next)
		if (__atomic_load_n(&t->tid, __ATOMIC_RELAXED))
			flush_table(t);
	if (end && !__atomic_exchange_n(&end_written, 1, __ATOMIC_ACQ_REL)) {
		proc_reading(1);
		spy_sud_flush_all();
	}
}

void rec_io_thread_exit(void)
{
	/* Every thread's counters, whether it made calls we saw or not: a
	 * thread making only raw system calls has no table. */
	uint64_t k[K_N] = { 0 };
	if (!__atomic_load_n(&per_thread_io, __ATOMIC_SEQ_CST)) {
		/* Set once, not counted (only none or some matters): ending
		 * threads would all write one line, on every CPU. */
		if (!__atomic_load_n(&unread_ends, __ATOMIC_RELAXED))
			__atomic_store_n(&unread_ends, 1, __ATOMIC_RELEASE);
	} else if (task_io("/proc/thread-self/io", k) == 0)
		for (int i = 0; i < K_N; i++)
			__atomic_add_fetch(&dead_kernel[i], k[i], __ATOMIC_RELAXED);
	spy_sud_thread_exit();
	struct rec_io_table *tb = rec_io_self;
	if (!tb)
		return;
	flush_table(tb);
	__atomic_add_fetch(&retired_writes, tb->seen_writes, __ATOMIC_RELAXED);
	__atomic_add_fetch(&retired_reads, tb->seen_reads, __ATOMIC_RELAXED);
	tb->seen_writes = tb->seen_reads = 0;
	rec_io_self = NULL;
	__atomic_store_n(&tb->tid, 0, __ATOMIC_RELEASE);
}

/* ---- start-up, fork, fatal signals ----------------------------------------- */

static int runtime_range(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	const char *base = spy_basename(info->dlpi_name ? info->dlpi_name : "");
	if (!spy_strneq(base, "libc.so", 7) && !spy_strneq(base, "libstdc++.so", 12))
		return 0;
	for (int i = 0; i < info->dlpi_phnum && rec_io_n_runtime < 8; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		rec_io_runtime_lo[rec_io_n_runtime] = info->dlpi_addr + ph->p_vaddr;
		rec_io_runtime_hi[rec_io_n_runtime] =
			info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
		rec_io_n_runtime++;
	}
	return 0;
}

static void write_mode(void)
{
	uint8_t *p = spy_writer_begin(TRACE_IO_MODE, 3 * TRACE_VARINT_MAX);
	if (!p)
		return;
	unsigned flags = TRACE_IO_MODE_PLT | (patched_mask ? TRACE_IO_MODE_PATCH : 0) |
			 (spy_sud_on ? TRACE_IO_MODE_SUD : 0) |
			 (rec_io_every ? TRACE_IO_MODE_CALLS : 0);
	p = trace_put_varint(p, flags);
	p = trace_put_varint(p, patched_mask);
	spy_writer_end(p);
}

static void after_fork_child(void)
{
	/* The parent's counts are the parent's: the child starts at zero
	 * with its own trace, and the parent's other threads are gone. */
	for (struct rec_io_table *t = tables; t; t = t->next) {
		for (unsigned i = 0; i < REC_IO_SLOTS; i++)
			t->slots[i] = (struct rec_io_slot){ 0 };
		for (unsigned i = 0; i < TRACE_IO_FN_MAX; i++)
			t->overflow[i] = (struct rec_io_slot){ 0 };
		t->seen_writes = t->seen_reads = 0;
		t->flushing = 0;
		t->tid = t == rec_io_self ? spy_sys_gettid() : 0;
	}
	retired_writes = retired_reads = 0;
	for (int i = 0; i < K_N; i++)
		dead_kernel[i] = 0;
	own_reads = 0;
	unread_ends = 0;
	per_thread_io = 0;
	io_incomplete = 0;
	rec_io_passed_writes = rec_io_passed_reads = 0;
	end_written = 0;
	rec_io_ending = 0;
	spy_sud_after_fork_child();
	if (spy_tracing) {
		spy_self.guard++;
		write_mode();
		proc_reading(0);
		spy_self.guard--;
	}
}

static void on_fatal(int sig, siginfo_t *info, void *context)
{
	(void)sig;
	(void)info;
	(void)context;
	rec_io_flush_all(1);
}

void rec_io_init(void)
{
	tsc0 = rec_io_clock();
	ns0 = spy_now_ns();
	rec_io_every = spy_opt.io_every;
	dl_iterate_phdr(runtime_range, NULL);
	patched_mask = rec_io_patch_libc(spy_opt.io_patch);
	if (spy_streq(spy_opt.syscalls, "all"))
		spy_sud_init();
	else if (!spy_streq(spy_opt.syscalls, "io"))
		spy_say("bad value '%s' for option syscalls (io or all); counting read/write calls only",
			spy_opt.syscalls);
	write_mode();
	proc_reading(0);
	spy_signals_observe_faults(on_fatal);
	pthread_atfork(before_fork, NULL, after_fork_child);
}

void rec_io_thread_start(void)
{
	spy_sud_arm_thread();
}

void rec_io_process_exit(void)
{
	rec_io_flush_all(1);
	rec_io_ending = 1;
}
