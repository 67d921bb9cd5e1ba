/* spy_writer.c: the trace file and the per-thread regions that feed it.
 * Runs inside hooks and signal handlers: no allocation, no stdio, no locks.
 *
 * Each thread owns a region of the trace file, mapped shared: a record is
 * in the page cache the moment it is complete, so nothing waits to be
 * written and a process killed at any instant loses nothing but the record
 * it was writing. The only shared state on the hot path is read-only; a
 * thread touches a global (one atomic add) only when its region is full.
 */
#include "spy_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#include "spy_options.h"
#include "spy_ownfd.h"
#include "spy_real.h"
#include "spy_process.h"
#include "spy_sys.h"
#include "trace_decode.h"
#include "trace_encode.h"

/* A thread's first region is all a quiet thread costs (thousands of
 * threads may each record a few events); busy threads map up to
 * WINDOW_MAX regions at once. */
#define REGION_SIZE SPY_REGION_SIZE
#define WINDOW_MAX 64
/* A trace bigger than this is worth keeping without reading it back. */
#define HOLDS_ANY_MAX ((off_t)1 << 20)
/* Read back for the blocks it handed out up to this size (about 0.3 s) */
#define HANDED_OUT_MAX ((off_t)1 << 30)
/* The largest record body: a region less its chunk header and slack. */
#define MAX_BODY (REGION_SIZE - TRACE_CHUNK_HEADER_SIZE - 64)
_Static_assert(MAX_BODY == SPY_WRITER_MAX_BODY, "spy_writer.h must agree");
#define NO_CHUNK SPY_NO_CHUNK

static struct spy_buffer *registry;
static int trace_fd = -1;
static dev_t trace_dev;    /* the trace's identity, to know its descriptor */
static ino_t trace_ino;
static char trace_path[PATH_MAX];
static uint64_t next_region;  /* file offset of the next free region */

/* A thread's first window is one region. Mapped one by one, each took
 * one of the kernel's mappings per thread (vm.max_map_count, 65530 by
 * default): with the thread's stack and its guard page that made three,
 * and a program with many threads alive ran out of mappings (its
 * pthread_create failing, the trace no longer mappable) thousands of
 * threads before it would without libspy. First windows are cut from
 * runs of them mapped at once, 1, 2, 4, ... up to WINDOW_MAX regions (a
 * process with one thread reserves one region, as before). A run stays
 * mapped: each of its regions stays some buffer's (buffers pass from
 * ended threads to new ones). */
static int firsts_lock;
static uint8_t *firsts;          /* the current run */
static uint64_t firsts_off;      /* its offset in the file */
static uint32_t firsts_regions, firsts_used, firsts_next = 1;
static int failed_once;

/* Buffer records come from a page-sized pool; they are never freed. */
static struct spy_buffer *pool;
static size_t pool_left;

const char *spy_writer_path(void)
{
	return trace_path;
}

/* ---- time ----------------------------------------------------------------- */

/* clock_gettime costs about as much as the rest of a record, so when the
 * kernel itself trusts the time stamp counter, records take their time from
 * it: each chunk starts from a clock_gettime reading, and the counter ticks
 * since then are scaled by a rate measured against the clock over the run
 * so far (refined at every chunk start). */
static int use_tsc;
static uint64_t calib_tsc, calib_ns;
uint64_t spy_writer_rate_q32; /* 0 until measured over >= 10 ms */
/* Counter ticks a clock reading takes when nothing interrupts it (a few
 * times the quickest seen at start): only such readings refine the rate.
 * One that a preemption stretched would skew it, and a skewed rate moves
 * every record of a long chunk (another thread's event could then seem
 * to come first). */
static uint64_t tight_ticks;

/* The clock and the counter read as one moment: the counter on both sides
 * of the clock, the tightest of up to tries attempts (a thread preempted
 * between the readings would otherwise stamp a whole chunk early by the
 * time it lost). Returns the ticks between the two counter readings. */
static uint64_t clock_pair(uint64_t *ns, uint64_t *tsc, int tries)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < tries && best > tight_ticks; i++) {
		uint64_t t0 = spy_read_tsc();
		uint64_t n = spy_now_ns();
		uint64_t t1 = spy_read_tsc();
		if (t1 - t0 < best) {
			best = t1 - t0;
			*ns = n;
			*tsc = t0 + (t1 - t0) / 2;
		}
	}
	return best;
}

static void time_init(void)
{
	char src[32];
	ssize_t n = spy_read_file(
		"/sys/devices/system/clocksource/clocksource0/current_clocksource",
		src, sizeof(src) - 1);
	use_tsc = n >= 3 && spy_strneq(src, "tsc", 3);
	tight_ticks = 0;
	tight_ticks = 4 * clock_pair(&calib_ns, &calib_tsc, 8);
	spy_writer_rate_q32 = 0;
}

/* The last reading of the clock a chunk started from. A chunk that starts
 * within RECENT_NS of it (a storm of short threads starts one each) takes
 * its base from it and the counter, without a clock_gettime of its own.
 * seq is odd while the pair is being written. */
#define RECENT_NS 1000000u
static struct {
	uint32_t seq;
	uint64_t ns, tsc;
} recent;

static int base_from_recent(struct spy_buffer *b, uint64_t rate)
{
	uint32_t seq = __atomic_load_n(&recent.seq, __ATOMIC_ACQUIRE);
	if (!rate || (seq & 1))
		return 0;
	uint64_t ns = __atomic_load_n(&recent.ns, __ATOMIC_RELAXED);
	uint64_t tsc = __atomic_load_n(&recent.tsc, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&recent.seq, __ATOMIC_RELAXED) != seq || !ns)
		return 0;
	uint64_t now = spy_read_tsc();
	uint64_t since = (uint64_t)(((unsigned __int128)(now - tsc) * rate) >> 32);
	if (now < tsc || since >= RECENT_NS)
		return 0;
	b->base_ns = ns + since;
	b->base_tsc = now;
	return 1;
}

static void publish_recent(uint64_t ns, uint64_t tsc)
{
	uint32_t seq = __atomic_load_n(&recent.seq, __ATOMIC_RELAXED);
	if ((seq & 1) || !__atomic_compare_exchange_n(&recent.seq, &seq, seq + 1, 0,
						      __ATOMIC_ACQUIRE,
						      __ATOMIC_RELAXED))
		return; /* another thread is writing it */
	__atomic_store_n(&recent.ns, ns, __ATOMIC_RELAXED);
	__atomic_store_n(&recent.tsc, tsc, __ATOMIC_RELAXED);
	__atomic_store_n(&recent.seq, seq + 2, __ATOMIC_RELEASE);
}

static void chunk_time_start(struct spy_buffer *b)
{
	if (!use_tsc) {
		b->base_ns = spy_now_ns();
		return;
	}
	uint64_t rate = __atomic_load_n(&spy_writer_rate_q32, __ATOMIC_RELAXED);
	if (base_from_recent(b, rate))
		return;
	if (clock_pair(&b->base_ns, &b->base_tsc, 4) > tight_ticks)
		return;
	publish_recent(b->base_ns, b->base_tsc);
	uint64_t dns = b->base_ns - calib_ns, dtsc = b->base_tsc - calib_tsc;
	if (dns >= 10000000u && dtsc > 0)
		__atomic_store_n(&spy_writer_rate_q32,
				 (uint64_t)(((unsigned __int128)dns << 32) / dtsc),
				 __ATOMIC_RELAXED);
}

uint64_t spy_writer_now(void)
{
	struct spy_buffer *b = spy_self.buf;
	return b ? spy_writer_time(b) : spy_now_ns();
}

/* ---- naming and opening ------------------------------------------------ */

/* Expands %p, %e and %% of the out= pattern into dst. */
static void expand_pattern(char *dst, size_t cap, const char *pattern)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	const char *exe_name = n > 0 ? spy_basename(exe) : "unknown";
	size_t len = 0;
	for (const char *p = pattern; *p && len + 1 < cap; p++) {
		char num[24];
		const char *ins = NULL;
		if (*p == '%' && p[1] == 'p') {
			spy_format(num, sizeof(num), "%d", (int)spy_sys_getpid());
			ins = num;
		} else if (*p == '%' && p[1] == 'e') {
			ins = exe_name;
		} else if (*p == '%' && p[1] == '%') {
			ins = "%";
		}
		if (ins) {
			p++;
			len += spy_strlcpy(dst + len, ins, cap - len);
		} else {
			dst[len++] = *p;
		}
	}
	dst[len] = '\0';
}

/* path with ".<pid>" (and "-<n>" when n > 0) put before a ".log" ending. */
static void with_suffix(char *dst, size_t cap, const char *path, int n)
{
	size_t len = spy_strlen(path);
	size_t stem = len;
	if (len >= 4 && spy_streq(path + len - 4, ".log"))
		stem = len - 4;
	char suffix[48];
	if (n > 0)
		spy_format(suffix, sizeof(suffix), ".%d-%d", (int)spy_sys_getpid(), n);
	else
		spy_format(suffix, sizeof(suffix), ".%d", (int)spy_sys_getpid());
	size_t k = spy_strlcpy(dst, path, stem + 1 < cap ? stem + 1 : cap);
	k += spy_strlcpy(dst + k, suffix, cap - k);
	spy_strlcpy(dst + k, path + stem, cap - k);
}

static int create_exclusive(const char *path)
{
	return spy_sys_open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
				  O_CLOEXEC, 0600);
}

/* A process that starts tracing afresh may replace an old trace of the same
 * name, but only a regular file of its own: never a symlink or another
 * user's file. A process that descends from a traced one never replaces
 * anything: it takes a name with its pid added instead. */
static int open_named(char *path, size_t cap, int cause)
{
	int fd = create_exclusive(path);
	if (fd >= 0 || errno != EEXIST)
		return fd;
	if (cause == TRACE_CAUSE_START) {
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_uid == geteuid() && unlink(path) == 0)
			return create_exclusive(path);
		errno = EEXIST;
		return -1;
	}
	char base[PATH_MAX];
	spy_strlcpy(base, path, sizeof(base));
	for (int n = 0; n < 100; n++) {
		with_suffix(path, cap, base, n);
		fd = create_exclusive(path);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

static void make_absolute(char *path, size_t cap)
{
	if (path[0] == '/')
		return;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return;
	char abs[PATH_MAX];
	size_t n = spy_strlcpy(abs, cwd, sizeof(abs));
	if (n + 1 < sizeof(abs))
		abs[n++] = '/';
	spy_strlcpy(abs + n, path, sizeof(abs) - n);
	spy_strlcpy(path, abs, cap);
}

static void writer_fail(const char *what, int err)
{
	spy_tracing = 0;
	if (__atomic_exchange_n(&failed_once, 1, __ATOMIC_ACQ_REL))
		return;
	spy_say("cannot %s trace '%s': %s; the program runs on untraced", what,
		  trace_path, strerrordesc_np(err));
}

/* The trace's descriptor went and the trace cannot be opened again (the
 * program took the number in a way libspy did not see, then dropped the
 * privileges the trace needs, or removed it). Tracing stops without a
 * word: the program has been running for a while, and a line on its
 * stderr now would change its output (varnishd shows its children's
 * stderr as its own); the trace reads as one that ends early. A failure
 * to create the trace, at start, still says so once. */
static void trace_lost(void)
{
	spy_tracing = 0;
	__atomic_store_n(&failed_once, 1, __ATOMIC_RELEASE);
}

/* 0 if the file may grow to end bytes; -1 with EFBIG past the program's
 * RLIMIT_FSIZE (ulimit -f): growing the file there would raise SIGXFSZ,
 * whose default action kills the program. */
static int size_allowed(uint64_t end)
{
	if (end > spy_sys_fsize_limit()) {
		errno = EFBIG;
		return -1;
	}
	return 0;
}

int spy_writer_open(int cause)
{
	char path[PATH_MAX];
	expand_pattern(path, sizeof(path), spy_opt.out);
	spy_strlcpy(trace_path, path, sizeof(trace_path));
	/* A process a traced one started says nothing of a trace it cannot
	 * have unless a person reads its stderr: a program that dropped its
	 * privileges, or went where it may not write, before running
	 * another reads that stderr itself (varnishd shows its compilers'
	 * as its own), and a line there changes its output. Its parent's
	 * trace still names it (fork, exec records). */
	failed_once = cause != TRACE_CAUSE_START && !isatty(2);
	int fd = open_named(path, sizeof(path), cause);
	if (fd < 0) {
		spy_strlcpy(trace_path, path, sizeof(trace_path));
		writer_fail("create", errno);
		return -1;
	}
	fd = spy_sys_fd_high(fd);
	if (fd < 0) {
		int err = errno;
		unlink(path); /* created here, empty */
		writer_fail("create", err);
		return -1;
	}
	make_absolute(path, sizeof(path));
	spy_strlcpy(trace_path, path, sizeof(trace_path));
	uint8_t header[TRACE_FILE_HEADER_SIZE];
	trace_put_file_header(header, REGION_SIZE);
	if (size_allowed(sizeof(header)) < 0 ||
	    spy_sys_write_all(fd, header, sizeof(header)) < 0) {
		writer_fail("write", errno);
		spy_sys_close(fd);
		return -1;
	}
	/* The first region is the header's; threads take the ones after. */
	next_region = REGION_SIZE;
	struct stat st;
	if (fstat(fd, &st) == 0) {
		trace_dev = st.st_dev;
		trace_ino = st.st_ino;
	}
	trace_fd = fd;
	time_init();
	spy_tracing = 1;
	return 0;
}

/* ---- regions -------------------------------------------------------------- */

/* Reserves the disk space first, so that a full disk is an error here and
 * never a SIGBUS in the program when a mapped page is written. Zeros are
 * written there rather than the space fallocated: the pages are then in
 * the page cache already, dirty, their blocks reserved (ext4's delayed
 * allocation), and faulting them in only maps them. After a fallocate
 * every fault made its page, read the unwritten extent as zeros and
 * prepared its block: 1 ms a MiB here against 0.3 ms for the zeros and
 * their faults together (docs/performance.md, "Where the time goes").
 * One call for the whole window, so that the file system may hold it in
 * large folios (map_window below). */
#define ZEROS_SIZE ((size_t)64 << 10)
#define ZEROS_IOV 16

static int reserve(int fd, uint64_t off, size_t len)
{
	if (size_allowed(off + len) < 0)
		return -1;
	/* never written: its pages stay the kernel's shared zero page */
	static uint8_t zeros[ZEROS_SIZE];
	struct iovec iov[ZEROS_IOV];
	for (int i = 0; i < ZEROS_IOV; i++)
		iov[i] = (struct iovec){ zeros, ZEROS_SIZE };
	for (uint64_t done = 0; done < len;) {
		uint64_t left = len - done;
		int n = 0;
		for (; n < ZEROS_IOV && left; n++) {
			iov[n].iov_len = left < ZEROS_SIZE ? left : ZEROS_SIZE;
			left -= iov[n].iov_len;
		}
		long w = syscall(SYS_pwritev, fd, iov, n, (long)(off + done), 0L);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = ENOSPC;
			return -1;
		}
		done += (uint64_t)w;
	}
	return 0;
}

/* A folio of the page cache (up to 2 MiB, aligned in the file to its
 * size) is mapped by one fault only when all its pages fall under one
 * page table, that is within a 2 MiB-aligned stretch of addresses.
 * Otherwise every page faults alone, and each such fault readies the
 * whole folio's blocks again: a 1 MiB window took 1.2 ms to fault in
 * instead of 0.06 ms, in about half the runs (wherever mmap happened to
 * put it). So a window goes where its address and its file offset agree
 * modulo 2 MiB: into room reserved 2 MiB longer, whose rest is given back
 * at once. Not under a limit on the address space (RLIMIT_AS), where the
 * room held for that moment could make another thread's allocation fail. */
#define PTE_SPAN ((uintptr_t)2 << 20)

static void *map_window(int fd, size_t len, uint64_t off)
{
	void *p = MAP_FAILED;
	struct rlimit as;
	uint8_t *room = MAP_FAILED;
	if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur == RLIM_INFINITY)
		room = mmap(NULL, len + PTE_SPAN, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (room != MAP_FAILED) {
		uint8_t *at = room + (((uintptr_t)off - (uintptr_t)room) &
				      (PTE_SPAN - 1));
		p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 fd, (off_t)off);
		if (p == MAP_FAILED) {
			munmap(room, len + PTE_SPAN);
		} else {
			if (at > room)
				munmap(room, (size_t)(at - room));
			munmap(at + len, (size_t)(room + PTE_SPAN - at));
		}
	}
	/* anywhere, when the room or its split into three mappings was
	 * refused (the process at vm.max_map_count) */
	if (p == MAP_FAILED)
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 (off_t)off);
	return p;
}

/* Maps the thread a new window of regions: one at first, then twice as
 * many each time, up to WINDOW_MAX, so that quiet threads cost one region
 * and busy ones few system calls. */
static void note_truncated(void);

/* 1 if fd is open on the trace (the same file, not just its name). */
static int names_trace(int fd, struct stat *st)
{
	return fd >= 0 && fstat(fd, st) == 0 && st->st_dev == trace_dev &&
	       st->st_ino == trace_ino;
}

/* The trace's descriptor, checked first. The program's closes pass it by
 * (spy_ownfd.h), but one libspy does not see (a system call made without
 * the C library) may still take it, and the program then get its number
 * back for a file of its own: growing and mapping that would write the
 * trace into the program's file. So every use (all on slow paths) checks
 * that the number still names the trace, and if not takes the copy made
 * when the program put a file on the number (dup2), or opens the trace
 * again by its path; -1 when that fails too. *st receives what fstat says
 * of it. */
static int trace_fd_checked(struct stat *st)
{
	int fd = __atomic_load_n(&trace_fd, __ATOMIC_ACQUIRE);
	if (names_trace(fd, st))
		return fd;
	int again = spy_ownfd_on(trace_dev, trace_ino);
	int copy = again >= 0 && names_trace(again, st);
	if (!copy) {
		if (!trace_path[0])
			return -1;
		again = spy_sys_open(trace_path, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
		if (again < 0)
			return -1;
		if (!names_trace(again, st)) {
			spy_sys_close(again);
			return -1;
		}
		again = spy_sys_fd_high(again);
		if (again < 0)
			return -1;
	}
	/* another thread may have done the same meanwhile: one copy stays
	 * (of the same file, so *st holds for it too) */
	if (!__atomic_compare_exchange_n(&trace_fd, &fd, again, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		if (!copy)
			spy_sys_close(again);
		return fd;
	}
	return again;
}

/* 1 when the file is shorter than this thread's last window reached: it
 * was truncated. Caught here too, not only by the SIGBUS of a store into
 * a cut page, because reserving the next window would grow the file back
 * (its lost start reading as zeros) before any such store. */
static int cut_under_us(const struct stat *st, const struct spy_buffer *b)
{
	uint64_t end = b->window_off + (uint64_t)b->window_regions * REGION_SIZE;
	return b->window && (uint64_t)st->st_size < end;
}

/* 1 when the file no longer starts with the trace's magic: it was cut
 * (and grown back, by this window's reservation or another thread's, so
 * that its size says nothing: the cut between the size check above and
 * the reservation would otherwise go unseen for good). */
static int header_gone(int fd)
{
	char magic[TRACE_MAGIC_LEN];
	long n = syscall(SYS_pread64, fd, magic, sizeof(magic), 0);
	return n == (long)sizeof(magic) ? memcmp(magic, TRACE_MAGIC, sizeof(magic)) != 0
					: n >= 0;
}

/* 1 if another thread wrote a record within the last BUSY_NS before b's
 * last one. Faulting a whole window in at once holds the address space's
 * lock while it works: a busy thread's mprotect or mmap (glibc growing
 * its arena) then waits for it, and the faults of every thread queue
 * behind that one. With two threads of malloc_bench at work, they slept
 * about 1,000 times a run (30 with plain faults, which take only their
 * mapping's lock); one thread at work (another waiting in a join) runs
 * about 5 % faster with its windows faulted in at once. */
#define BUSY_NS 10000000u

static int other_writer_busy(const struct spy_buffer *b)
{
	uint64_t now = b->last_ns;
	for (const struct spy_buffer *o = __atomic_load_n(&registry, __ATOMIC_ACQUIRE);
	     o; o = o->next) {
		uint64_t last = __atomic_load_n(&o->last_ns, __ATOMIC_RELAXED);
		if (o != b && __atomic_load_n(&o->owner, __ATOMIC_RELAXED) &&
		    last + BUSY_NS > now)
			return 1;
	}
	return 0;
}

/* Reserves n regions at the file's end and maps them (not inherited by a
 * fork child: it must not write into its parent's trace); their offset
 * in *off. NULL, with tracing stopped, when that fails. */
static uint8_t *map_regions(int fd, uint32_t n, uint64_t *off)
{
	size_t len = (size_t)n * REGION_SIZE;
	*off = __atomic_fetch_add(&next_region, len, __ATOMIC_RELAXED);
	if (reserve(fd, *off, len) < 0) {
		writer_fail("write", errno);
		return NULL;
	}
	if (header_gone(fd)) {
		note_truncated();
		return NULL;
	}
	void *p = map_window(fd, len, *off);
	if (p == MAP_FAILED) {
		writer_fail("map", errno);
		return NULL;
	}
	madvise(p, len, MADV_DONTFORK);
	return p;
}

/* b's first window: the next region of the current run, or of a new one. */
static int window_first(struct spy_buffer *b, int fd)
{
	spy_forksafe_lock(&firsts_lock);
	if (!firsts || firsts_used == firsts_regions) {
		uint32_t n = firsts_next;
		uint8_t *p = map_regions(fd, n, &firsts_off);
		if (!p) {
			spy_forksafe_unlock(&firsts_lock);
			return -1;
		}
		firsts = p;
		firsts_regions = n;
		firsts_used = 0;
		firsts_next = n < WINDOW_MAX ? 2 * n : WINDOW_MAX;
	}
	b->window = b->region = firsts + (size_t)firsts_used * REGION_SIZE;
	b->window_off = firsts_off + (uint64_t)firsts_used * REGION_SIZE;
	firsts_used++;
	spy_forksafe_unlock(&firsts_lock);
	b->window_regions = 1;
	b->window_shared = 1;
	b->grow = 2;
	if (!other_writer_busy(b))
		madvise(b->window, REGION_SIZE, MADV_POPULATE_WRITE);
	return 0;
}

static int window_new(struct spy_buffer *b)
{
	struct stat st;
	int fd = spy_tracing ? trace_fd_checked(&st) : -1;
	if (spy_tracing && fd < 0)
		trace_lost();
	if (spy_tracing && cut_under_us(&st, b))
		note_truncated();
	if (b->window && !b->window_shared)
		munmap(b->window, (size_t)b->window_regions * REGION_SIZE);
	b->window = b->region = NULL;
	b->window_shared = 0;
	b->used = 0;
	b->chunk = NO_CHUNK;
	if (!spy_tracing)
		return -1;
	if (!b->grow)
		return window_first(b, fd);
	uint32_t n = b->grow;
	uint64_t off;
	uint8_t *p = map_regions(fd, n, &off);
	if (!p)
		return -1;
	/* Fault the pages in writable now, in one call, rather than one trap
	 * per page on the hot path (older kernels: they fault as used); but
	 * not while another thread is busy recording too (above). */
	if (!other_writer_busy(b))
		madvise(p, (size_t)n * REGION_SIZE, MADV_POPULATE_WRITE);
	b->window = b->region = p;
	b->window_off = off;
	b->window_regions = n;
	b->grow = n < WINDOW_MAX ? 2 * n : WINDOW_MAX;
	return 0;
}

/* Moves to the next region of the window, or a new window. */
static int region_next(struct spy_buffer *b)
{
	if (b->region && b->region + REGION_SIZE <
				 b->window + (size_t)b->window_regions * REGION_SIZE) {
		b->region += REGION_SIZE;
		b->used = 0;
		b->chunk = NO_CHUNK;
		return 0;
	}
	return window_new(b);
}

static struct spy_buffer *buffer_new(void)
{
	if (pool_left == 0) {
		pool = spy_sys_mmap(4096);
		if (!pool)
			return NULL;
		pool_left = 4096 / sizeof(struct spy_buffer);
	}
	pool_left--;
	return pool++;
}

/* A free buffer from the registry, or a new one. */
static struct spy_buffer *buffer_acquire(pid_t tid)
{
	for (struct spy_buffer *b = __atomic_load_n(&registry, __ATOMIC_ACQUIRE);
	     b; b = b->next) {
		pid_t free_owner = 0;
		if (__atomic_load_n(&b->owner, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&b->owner, &free_owner, tid, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return b;
	}
	/* New buffers are rare (a thread's first record); a brief spin keeps
	 * the pool simple. */
	static int pool_lock;
	spy_forksafe_lock(&pool_lock);
	struct spy_buffer *b = buffer_new();
	spy_forksafe_unlock(&pool_lock);
	if (!b)
		return NULL;
	b->owner = tid;
	b->chunk = NO_CHUNK;
	b->next = __atomic_load_n(&registry, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&registry, &b->next, b, 0,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
	return b;
}

/* Opens a chunk for the buffer's owner at the region's end. */
static void chunk_open(struct spy_buffer *b)
{
	uint8_t *h = b->region + b->used;
	uint64_t before = b->last_ns;
	chunk_time_start(b);
	/* A thread's records stay in order across its chunks even where the
	 * counter's extrapolation in the last chunk ran ahead of the clock. */
	if (b->base_ns < before)
		b->base_ns = before;
	b->last_ns = b->base_ns;
	b->last_addr = 0;
	trace_put_chunk_header(h, 0, (uint32_t)b->owner, b->base_ns);
	b->chunk = b->used;
	b->used += TRACE_CHUNK_HEADER_SIZE;
}

/* Makes room for a record of up to need bytes; 0 or -1. */
static int make_room(struct spy_buffer *b, size_t need)
{
	if (b->region && b->chunk != NO_CHUNK && b->used + need <= REGION_SIZE)
		return 0;
	if (!b->region || b->used + TRACE_CHUNK_HEADER_SIZE + need > REGION_SIZE)
		if (region_next(b) < 0)
			return -1;
	chunk_open(b);
	return 0;
}

/* ---- records -------------------------------------------------------------- */

static uint8_t *record_open(struct spy_buffer *b, unsigned kind,
			    size_t max_body, uint64_t now)
{
	/* Reserve as many length bytes as max_body needs; record_close
	 * closes the gap if the body came out shorter. */
	size_t len_bytes = 1;
	for (size_t m = max_body; m >= 0x80; m >>= 7)
		len_bytes++;
	if (make_room(b, 1 + len_bytes + TRACE_VARINT_MAX + max_body) < 0)
		return NULL;
	if (now < b->last_ns)
		now = b->last_ns; /* dt cannot go backwards inside a chunk */
	uint8_t *start = b->region + b->used;
	start[0] = 0; /* the kind byte is set last, by record_close */
	start[1] = (uint8_t)len_bytes; /* remembered until record_close */
	b->record = b->used;
	b->kind = (uint8_t)kind;
	uint8_t *p = trace_put_varint(start + 1 + len_bytes, now - b->last_ns);
	b->last_ns = now;
	return p;
}

static void record_close(struct spy_buffer *b, uint8_t *end)
{
	uint8_t *start = b->region + b->record;
	size_t len_bytes = start[1];
	uint8_t *body = start + 1 + len_bytes;
	size_t body_len = (size_t)(end - body);
	uint8_t lenbuf[TRACE_VARINT_MAX];
	size_t need = (size_t)(trace_put_varint(lenbuf, body_len) - lenbuf);
	if (need < len_bytes) {
		/* Close the gap, and clear what the move left behind: the bytes
		 * after the last chunk must stay zero (padding). */
		memmove(start + 1 + need, body, body_len);
		memset(start + 1 + need + body_len, 0, len_bytes - need);
	}
	memcpy(start + 1, lenbuf, need);
	b->used = b->record + 1 + (uint32_t)need + (uint32_t)body_len;
	/* Body, then the chunk length that covers it, then the kind byte: a
	 * process killed between any two of these stores leaves a trace that
	 * reads (trace_format.h). The stores reach the page cache in program
	 * order; only the compiler must be kept from reordering them. */
	__atomic_signal_fence(__ATOMIC_RELEASE);
	trace_put_u32(b->region + b->chunk + 4,
		      b->used - b->chunk - TRACE_CHUNK_HEADER_SIZE);
	__atomic_signal_fence(__ATOMIC_RELEASE);
	start[0] = b->kind;
}

/* The first record of every thread says who it is. */
static void write_thread_record(struct spy_buffer *b, pid_t tid)
{
	uint8_t *p = record_open(b, TRACE_THREAD, 3 * TRACE_VARINT_MAX,
				 spy_writer_time(b));
	if (!p)
		return;
	p = trace_put_varint(p, (uint64_t)tid);
	p = trace_put_varint(p, 0);
	record_close(b, p);
}

uint8_t *spy_writer_begin_slow(unsigned kind, size_t max_body, uint64_t when)
{
	struct spy_thread *t = &spy_self;
	if (!spy_tracing || max_body > MAX_BODY)
		return NULL;
	struct spy_buffer *b = t->buf;
	if (SPY_UNLIKELY(!b)) {
		if (!t->tid)
			t->tid = spy_sys_thread_tid();
		b = t->buf = buffer_acquire(t->tid);
		if (!b)
			return NULL;
		b->chunk = NO_CHUNK; /* a new owner starts its own chunk */
		write_thread_record(b, t->tid);
		spy_thread_register();
	}
	return record_open(b, kind, max_body, when ? when : spy_writer_time(b));
}

void spy_writer_end_slow(struct spy_buffer *b, uint8_t *end)
{
	record_close(b, end);
}

/* Gives back the disk space reserved past what each thread has written:
 * the windows of busy threads are up to a megabyte. The file keeps its
 * size (the reader takes the zeros for padding). Only the caller's own
 * buffer and the ones no thread holds (taken for good, so that no thread
 * starting now writes there): a thread still running may be writing past
 * the point this would cut, and its records would turn to zeros. */
#define RELEASE_MIN ((uint64_t)64 << 10)

static void release_unused(void)
{
	pid_t self = spy_self.tid;
	struct stat st;
	int fd = trace_fd_checked(&st);
	if (fd < 0)
		return;
	/* the first windows no thread has taken, taken for good */
	spy_forksafe_lock(&firsts_lock);
	if (firsts && (uint64_t)(firsts_regions - firsts_used) * REGION_SIZE >=
			      RELEASE_MIN)
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)(firsts_off + (uint64_t)firsts_used * REGION_SIZE),
			  (off_t)((uint64_t)(firsts_regions - firsts_used) * REGION_SIZE));
	firsts_used = firsts_regions;
	spy_forksafe_unlock(&firsts_lock);
	for (struct spy_buffer *b = __atomic_load_n(&registry, __ATOMIC_ACQUIRE);
	     b; b = b->next) {
		pid_t none = 0;
		if (!b->window)
			continue;
		if (b != spy_self.buf &&
		    !__atomic_compare_exchange_n(&b->owner, &none, self ? self : -1,
						 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		uint64_t used = (uint64_t)(b->region - b->window) + b->used;
		uint64_t from = (used + 4095) & ~(uint64_t)4095;
		uint64_t len = (uint64_t)b->window_regions * REGION_SIZE;
		/* A few unused pages stay: giving back disk space costs the
		 * file system a journal transaction (a tenth of a millisecond
		 * here, at the exit of every short process). */
		if (from + RELEASE_MIN <= len)
			fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  (off_t)(b->window_off + from), (off_t)(len - from));
	}
}

void spy_writer_note(unsigned level, const char *text)
{
	size_t len = spy_strlen(text);
	uint8_t *p = spy_writer_begin(TRACE_NOTE, 2 * TRACE_VARINT_MAX + len);
	if (!p)
		return;
	p = trace_put_varint(p, level);
	p = trace_put_str(p, text, len);
	spy_writer_end(p);
}

void spy_writer_finish(unsigned how, int status, int sig)
{
	spy_writer_finish_interrupting(how, status, sig);
	if (spy_tracing && how != TRACE_EXIT_SIGNAL)
		release_unused();
}

void spy_writer_finish_interrupting(unsigned how, int status, int sig)
{
	uint8_t *p = spy_writer_begin(TRACE_EXIT, 3 * TRACE_VARINT_MAX);
	if (p) {
		p = trace_put_varint(p, how);
		p = trace_put_varint(p, (uint64_t)(uint32_t)status);
		p = trace_put_varint(p, (uint64_t)sig);
		spy_writer_end(p);
	}
	p = spy_writer_begin(TRACE_END, 0);
	if (p)
		spy_writer_end(p);
}

void spy_writer_thread_exit(void)
{
	struct spy_thread *t = &spy_self;
	struct spy_buffer *b = t->buf;
	if (!b)
		return;
	t->buf = NULL;
	b->chunk = NO_CHUNK;
	__atomic_store_n(&b->owner, 0, __ATOMIC_RELEASE);
}

/* ---- what a trace holds ------------------------------------------------- */

/* Calls fn for every record in the chunks of buf[0, n) (a region read
 * back), with the body and the chunk's running ":delta" address (reset at
 * each chunk). Returns fn's first nonzero result, -1 when the region does
 * not read as chunks, 0 otherwise. */
typedef int (*record_fn)(uint8_t kind, struct trace_cursor *body,
			 uint64_t *addr, void *arg);

static int region_each(const uint8_t *buf, size_t n, record_fn fn, void *arg)
{
	size_t at = 0;
	while (at + TRACE_CHUNK_HEADER_SIZE <= n && buf[at]) {
		uint32_t len = trace_load_u32(buf + at + 4);
		if (trace_load_u32(buf + at) != TRACE_CHUNK_MAGIC ||
		    len > n - at - TRACE_CHUNK_HEADER_SIZE)
			return -1;
		struct trace_cursor c = trace_cursor_make(
			buf + at + TRACE_CHUNK_HEADER_SIZE, len);
		uint64_t addr = 0;
		while (trace_cursor_left(&c) > 0) {
			uint8_t kind;
			uint64_t len;
			if (trace_get_u8(&c, &kind) < 0 ||
			    trace_get_varint(&c, &len) < 0 ||
			    len > trace_cursor_left(&c))
				return -1;
			struct trace_cursor body = trace_cursor_make(c.p, len);
			int r = fn(kind, &body, &addr, arg);
			if (r)
				return r;
			c.p += len;
		}
		at += TRACE_CHUNK_HEADER_SIZE + len;
	}
	return 0;
}

/* region_each over the whole trace file, at most max bytes of it (-1 when
 * it is bigger, or cannot be read). */
static int trace_each(off_t max, record_fn fn, void *arg)
{
	struct stat st;
	int fd = trace_fd_checked(&st);
	if (fd < 0 || st.st_size > max)
		return -1;
	uint8_t *buf = spy_sys_mmap(REGION_SIZE);
	if (!buf)
		return -1;
	int r = 0;
	/* the first region is the file header's */
	for (off_t off = REGION_SIZE; off < st.st_size && !r; off += REGION_SIZE) {
		long n = syscall(SYS_pread64, fd, buf, REGION_SIZE, off);
		r = n < 0 ? -1 : region_each(buf, (size_t)n, fn, arg);
	}
	spy_sys_munmap(buf, REGION_SIZE);
	return r;
}

static int is_one_of(uint8_t kind, struct trace_cursor *body, uint64_t *addr,
		     void *kinds)
{
	(void)body;
	(void)addr;
	return ((const uint8_t *)kinds)[kind >> 3] >> (kind & 7) & 1;
}

int spy_writer_holds_any(const uint8_t kinds[32])
{
	return trace_each(HOLDS_ANY_MAX, is_one_of, (void *)kinds) != 0;
}

struct handed_out {
	void (*fn)(uintptr_t addr, void *arg);
	void *arg;
};

/* Follows the running address through every ":delta" field (ALLOC, FREE
 * and REALLOC are the only kinds that have them, with the short forms of
 * the first two) and reports the blocks handed out. */
static int note_handed_out(uint8_t kind, struct trace_cursor *body,
			   uint64_t *addr, void *arg)
{
	const struct handed_out *h = arg;
	uint64_t skip;
	int64_t d;
	if (kind == TRACE_ALLOC_SHORT || kind == TRACE_FREE_SHORT) {
		if (trace_get_uint(body, 2, &skip) < 0 ||  /* dt */
		    trace_get_uint(body, 1, &skip) < 0 ||  /* fn */
		    trace_get_addr16(body, &d) < 0)
			return -1;
		*addr += (uint64_t)d;
		if (kind == TRACE_ALLOC_SHORT)
			h->fn((uintptr_t)*addr, h->arg);
		return 0;
	}
	if (kind != TRACE_ALLOC && kind != TRACE_FREE && kind != TRACE_REALLOC)
		return 0;
	if (trace_get_varint(body, &skip) < 0 ||     /* dt */
	    trace_get_varint(body, &skip) < 0 ||     /* fn */
	    trace_get_svarint(body, &d) < 0)
		return -1;
	*addr += (uint64_t)d;
	if (kind == TRACE_REALLOC) {
		if (trace_get_svarint(body, &d) < 0)
			return -1;
		*addr += (uint64_t)d;   /* the new address; 0 if it failed */
	}
	if (kind != TRACE_FREE && *addr)
		h->fn((uintptr_t)*addr, h->arg);
	return 0;
}

int spy_writer_each_handed_out(void (*fn)(uintptr_t addr, void *arg), void *arg)
{
	struct handed_out h = { fn, arg };
	return trace_each(HANDED_OUT_MAX, note_handed_out, &h) < 0 ? -1 : 0;
}

/* ---- fork ------------------------------------------------------------------ */

void spy_writer_after_fork_child(void)
{
	struct spy_thread *t = &spy_self;
	/* The regions were not inherited (MADV_DONTFORK) and the parent's
	 * other threads do not exist here: start from nothing. */
	registry = NULL;
	pool_left = 0;
	/* the runs of first windows went with the regions */
	firsts = NULL;
	firsts_next = 1;
	t->tid = spy_sys_gettid();
	t->buf = NULL;
	/* only if the number is still the trace's: the program may have
	 * taken it for a file of its own, which the child must keep */
	struct stat st;
	if (names_trace(trace_fd, &st))
		spy_sys_close(trace_fd);
	trace_fd = -1;
}

/* ---- a trace cut under our feet ------------------------------------------- */

static void note_truncated(void)
{
	spy_tracing = 0;
	if (!__atomic_exchange_n(&failed_once, 1, __ATOMIC_ACQ_REL))
		spy_say("trace '%s' was truncated while in use; the program runs on untraced",
			trace_path);
}

int spy_writer_absorb_fault(const void *addr)
{
	for (struct spy_buffer *b = __atomic_load_n(&registry, __ATOMIC_ACQUIRE);
	     b; b = b->next) {
		uint8_t *w = b->window;
		size_t len = (size_t)b->window_regions * REGION_SIZE;
		if (!w || (const uint8_t *)addr < w || (const uint8_t *)addr >= w + len)
			continue;
		/* Someone truncated the trace: give the thread anonymous
		 * memory in its place, so the store that faulted succeeds
		 * when the handler returns, and stop tracing. */
		mmap(w, len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		note_truncated();
		return 1;
	}
	return 0;
}
