/* spy_writer.c: trace file, per-thread buffers, background flusher.
 * Runs inside hooks and signal handlers: no allocation (buffers come from
 * mmap), no stdio, no lock the program could hold. Each buffer has one
 * spin flag shared only by its owner thread and the flusher; the owner takes
 * it for each record, the flusher only with a try.
 */
#include "spy_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "spy_options.h"
#include "spy_real.h"
#include "spy_sys.h"
#include "trace_encode.h"

#define BUF_CAP (64 * 1024)

struct spy_buffer {
	int lock;
	pid_t owner;               /* tid of the thread using it, 0 if free */
	uint64_t base_ns;          /* chunk base time */
	uint64_t base_tsc;         /* time stamp counter at base_ns */
	uint64_t last_ns;          /* time of the last record */
	uint64_t last_addr;        /* running address for ":delta" fields */
	size_t len;                /* record bytes after the header room */
	struct spy_buffer *next;   /* registry link; buffers are never unmapped */
	uint8_t data[TRACE_CHUNK_HEADER_SIZE + BUF_CAP];
};

static struct spy_buffer *registry;
static int trace_fd = -1;
static dev_t trace_dev;
static ino_t trace_ino;
static char trace_path[PATH_MAX];
static int write_through;
static int failed_once;
static int flusher_running;      /* in this process (cleared in a fork child) */
static uint64_t flush_ns;
static uint64_t trace_start_ns;

/* Time. clock_gettime costs about as much as the rest of a record, so when
 * the kernel itself trusts the time stamp counter, records take their time
 * from it: each chunk starts from a clock_gettime reading, and the counter
 * ticks since then are scaled by a rate measured against the clock over
 * the whole run so far (refined at every chunk start). */
static int use_tsc;
static uint64_t calib_tsc, calib_ns;
static uint64_t ns_per_tick_q32; /* 0 until measured over >= 10 ms */

static inline uint64_t read_tsc(void)
{
	return __builtin_ia32_rdtsc();
}

static void time_init(void)
{
	char src[32];
	ssize_t n = spy_read_file(
		"/sys/devices/system/clocksource/clocksource0/current_clocksource",
		src, sizeof(src) - 1);
	use_tsc = n >= 3 && spy_strneq(src, "tsc", 3);
	calib_tsc = read_tsc();
	calib_ns = spy_now_ns();
	ns_per_tick_q32 = 0;
}

static void chunk_time_start(struct spy_buffer *b)
{
	b->base_ns = spy_now_ns();
	if (!use_tsc)
		return;
	b->base_tsc = read_tsc();
	uint64_t dns = b->base_ns - calib_ns, dtsc = b->base_tsc - calib_tsc;
	if (dns >= 10000000u && dtsc > 0)
		__atomic_store_n(&ns_per_tick_q32,
				 (uint64_t)(((unsigned __int128)dns << 32) / dtsc),
				 __ATOMIC_RELAXED);
}

static inline uint64_t buffer_now(const struct spy_buffer *b)
{
	uint64_t rate = __atomic_load_n(&ns_per_tick_q32, __ATOMIC_RELAXED);
	if (!rate || b->len == 0)
		return spy_now_ns();
	uint64_t ticks = read_tsc() - b->base_tsc;
	return b->base_ns + (uint64_t)(((unsigned __int128)ticks * rate) >> 32);
}

uint64_t spy_writer_now(void)
{
	struct spy_buffer *b = spy_self.buf;
	return b ? buffer_now(b) : spy_now_ns();
}

const char *spy_writer_path(void)
{
	return trace_path;
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
	return spy_sys_open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				  O_APPEND | O_CLOEXEC, 0600);
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

/* Keeps the trace out of the low descriptor numbers a program expects to
 * own (and may close or dup2 over). */
static int move_high(int fd)
{
	int high = fcntl(fd, F_DUPFD_CLOEXEC, 900);
	if (high < 0)
		return fd;
	spy_sys_close(fd);
	return high;
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

int spy_writer_open(int cause)
{
	char path[PATH_MAX];
	flush_ns = (uint64_t)spy_opt.flush_ms * 1000000u;
	expand_pattern(path, sizeof(path), spy_opt.out);
	int fd = open_named(path, sizeof(path), cause);
	if (fd < 0) {
		spy_error("cannot create trace '%s': %s; the program runs on untraced",
			  path, strerrordesc_np(errno));
		spy_tracing = 0;
		return -1;
	}
	fd = move_high(fd);
	uint8_t header[TRACE_FILE_HEADER_SIZE];
	trace_put_file_header(header);
	struct stat st;
	if (fstat(fd, &st) < 0 || spy_sys_write_all(fd, header, sizeof(header)) < 0) {
		spy_error("cannot write trace '%s': %s; the program runs on untraced",
			  path, strerrordesc_np(errno));
		spy_sys_close(fd);
		spy_tracing = 0;
		return -1;
	}
	trace_dev = st.st_dev;
	trace_ino = st.st_ino;
	make_absolute(path, sizeof(path));
	spy_strlcpy(trace_path, path, sizeof(trace_path));
	trace_fd = fd;
	time_init();
	trace_start_ns = spy_now_ns();
	failed_once = 0;
	write_through = 0;
	spy_tracing = 1;
	return 0;
}

/* ---- writing chunks ---------------------------------------------------- */

static void writer_fail(int err)
{
	spy_tracing = 0;
	if (__atomic_exchange_n(&failed_once, 1, __ATOMIC_ACQ_REL))
		return;
	spy_error("cannot write trace '%s': %s; the program runs on untraced",
		  trace_path, strerrordesc_np(err));
}

/* The program may have closed our descriptor and reused its number. */
static int fd_is_ours(void)
{
	struct stat st;
	return fstat(trace_fd, &st) == 0 && st.st_dev == trace_dev &&
	       st.st_ino == trace_ino;
}

static void flush_locked(struct spy_buffer *b)
{
	if (b->len == 0)
		return;
	if (spy_tracing && trace_fd >= 0) {
		trace_put_chunk_header(b->data, (uint32_t)b->len, (uint32_t)b->owner,
				       b->base_ns);
		int saved = errno;
		if (!fd_is_ours())
			writer_fail(EBADF);
		else if (spy_sys_write_all(trace_fd, b->data,
					   TRACE_CHUNK_HEADER_SIZE + b->len) < 0)
			writer_fail(errno);
		errno = saved;
	}
	b->len = 0;
	b->last_addr = 0;
}

static void buf_lock(struct spy_buffer *b)
{
	while (__atomic_exchange_n(&b->lock, 1, __ATOMIC_ACQUIRE))
		syscall(SYS_sched_yield);
}

static int buf_trylock(struct spy_buffer *b)
{
	return !__atomic_exchange_n(&b->lock, 1, __ATOMIC_ACQUIRE);
}

static void buf_unlock(struct spy_buffer *b)
{
	__atomic_store_n(&b->lock, 0, __ATOMIC_RELEASE);
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
	struct spy_buffer *b = spy_sys_mmap(sizeof(*b));
	if (!b)
		return NULL;
	b->owner = tid;
	b->next = __atomic_load_n(&registry, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&registry, &b->next, b, 0,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
	return b;
}

static uint8_t *record_open(struct spy_buffer *b, unsigned kind, size_t max_body,
			    uint8_t **body, uint64_t now)
{
	size_t room = 1 + TRACE_VARINT_MAX + max_body;
	if (b->len + room > BUF_CAP)
		flush_locked(b);
	if (b->len == 0) {
		chunk_time_start(b);
		if (now < b->base_ns)
			b->base_ns = now;
		b->last_ns = b->base_ns;
	}
	if (now < b->last_ns)
		now = b->last_ns; /* dt cannot go backwards inside a chunk */
	uint8_t *start = b->data + TRACE_CHUNK_HEADER_SIZE + b->len;
	start[0] = (uint8_t)kind;
	/* Reserve as many length bytes as max_body needs; end() closes a gap
	 * if the body came out shorter. */
	size_t len_bytes = 1;
	for (size_t m = max_body; m >= 0x80; m >>= 7)
		len_bytes++;
	start[1] = (uint8_t)len_bytes; /* remembered until end() */
	*body = start + 1 + len_bytes;
	uint8_t *p = trace_put_varint(*body, now - b->last_ns);
	b->last_ns = now;
	return p;
}

static void record_close(struct spy_buffer *b, uint8_t *end)
{
	uint8_t *start = b->data + TRACE_CHUNK_HEADER_SIZE + b->len;
	size_t len_bytes = start[1];
	uint8_t *body = start + 1 + len_bytes;
	size_t body_len = (size_t)(end - body);
	uint8_t lenbuf[TRACE_VARINT_MAX];
	size_t need = (size_t)(trace_put_varint(lenbuf, body_len) - lenbuf);
	if (need < len_bytes)
		memmove(start + 1 + need, body, body_len);
	memcpy(start + 1, lenbuf, need);
	b->len += 1 + need + body_len;
}

/* The first record of every thread says who it is. */
static void write_thread_record(struct spy_buffer *b, pid_t tid)
{
	uint8_t *body;
	uint8_t *p = record_open(b, TRACE_THREAD, 3 * TRACE_VARINT_MAX, &body,
				 buffer_now(b));
	p = trace_put_varint(p, (uint64_t)tid);
	p = trace_put_varint(p, 0);
	record_close(b, p);
}

uint8_t *spy_writer_begin(unsigned kind, size_t max_body)
{
	return spy_writer_begin_at(kind, max_body, 0);
}

uint8_t *spy_writer_begin_at(unsigned kind, size_t max_body, uint64_t when)
{
	struct spy_thread *t = &spy_self;
	if (!spy_tracing || max_body > BUF_CAP / 2)
		return NULL;
	if (SPY_UNLIKELY(!t->buf)) {
		if (!t->tid)
			t->tid = spy_sys_gettid();
		t->buf = buffer_acquire(t->tid);
		if (!t->buf)
			return NULL;
		buf_lock(t->buf);
		write_thread_record(t->buf, t->tid);
		buf_unlock(t->buf);
		spy_thread_register();
	}
	buf_lock(t->buf);
	uint8_t *body;
	return record_open(t->buf, kind, max_body, &body,
			   when ? when : buffer_now(t->buf));
}

void spy_writer_end(uint8_t *end)
{
	struct spy_buffer *b = spy_self.buf;
	record_close(b, end);
	if (write_through || b->last_ns - b->base_ns >= flush_ns)
		flush_locked(b);
	buf_unlock(b);
	/* Long-running programs get the background flusher even if they never
	 * start a thread; short ones stay single-threaded. */
	if (SPY_UNLIKELY(!flusher_running) && b->last_ns - trace_start_ns >= flush_ns)
		spy_writer_start_flusher();
}

uint8_t *spy_writer_put_addr(uint8_t *p, uintptr_t addr)
{
	struct spy_buffer *b = spy_self.buf;
	p = trace_put_svarint(p, (int64_t)(addr - b->last_addr));
	b->last_addr = addr;
	return p;
}

void spy_writer_flush_all(int how)
{
	for (struct spy_buffer *b = __atomic_load_n(&registry, __ATOMIC_ACQUIRE);
	     b; b = b->next) {
		if (how == SPY_FLUSH_FORCE) {
			flush_locked(b);
		} else if (buf_trylock(b)) {
			flush_locked(b);
			buf_unlock(b);
		}
	}
}

void spy_writer_finish(unsigned how, int status, int sig)
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
	write_through = 1;
	spy_writer_flush_all(how == TRACE_EXIT_SIGNAL ? SPY_FLUSH_FORCE : SPY_FLUSH_TRY);
}

void spy_writer_thread_exit(void)
{
	struct spy_thread *t = &spy_self;
	struct spy_buffer *b = t->buf;
	if (!b)
		return;
	buf_lock(b);
	flush_locked(b);
	t->buf = NULL;
	__atomic_store_n(&b->owner, 0, __ATOMIC_RELEASE);
	buf_unlock(b);
}

/* ---- the background flusher ------------------------------------------- */

static void *flusher_main(void *arg)
{
	(void)arg;
	spy_self.guard = 1; /* nothing this thread does is the program's */
	struct timespec tick = {0, (long)(flush_ns / 2)};
	if (flush_ns / 2 >= 1000000000u)
		tick = (struct timespec){(time_t)(flush_ns / 2000000000u), 0};
	for (;;) {
		nanosleep(&tick, NULL);
		uint64_t now = spy_now_ns();
		for (struct spy_buffer *b = __atomic_load_n(&registry, __ATOMIC_ACQUIRE);
		     b; b = b->next) {
			if (__atomic_load_n(&b->len, __ATOMIC_RELAXED) == 0 ||
			    now - __atomic_load_n(&b->base_ns, __ATOMIC_RELAXED) < flush_ns)
				continue;
			if (buf_trylock(b)) {
				flush_locked(b);
				buf_unlock(b);
			}
		}
	}
	return NULL;
}

void spy_writer_start_flusher(void)
{
	if (__atomic_exchange_n(&flusher_running, 1, __ATOMIC_ACQ_REL) ||
	    !spy_real.pthread_create)
		return;
	/* The flusher must never take a signal meant for the program. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t th;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	int guard = spy_self.guard;
	spy_self.guard = 1;
	if (spy_real.pthread_create(&th, &attr, flusher_main, NULL) != 0)
		flusher_running = 0;
	spy_self.guard = guard;
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- fork and exec ------------------------------------------------------ */

void spy_writer_before_fork(void)
{
	/* Everything recorded so far belongs to the parent's trace. */
	spy_writer_flush_all(SPY_FLUSH_TRY);
}

void spy_writer_after_fork_parent(void)
{
}

void spy_writer_after_fork_child(void)
{
	struct spy_thread *t = &spy_self;
	/* The parent's other threads do not exist here; their buffers are
	 * the parent's to write. This thread's buffer was emptied before the
	 * fork; anything left in it is the parent's too. */
	for (struct spy_buffer *b = __atomic_load_n(&registry, __ATOMIC_ACQUIRE);
	     b; b = b->next) {
		b->len = 0;
		b->last_addr = 0;
		b->lock = 0;
		b->owner = 0;
	}
	t->tid = spy_sys_gettid();
	t->buf = NULL;
	flusher_running = 0;
	if (trace_fd >= 0)
		spy_sys_close(trace_fd);
	trace_fd = -1;
}

void spy_writer_after_failed_exec(void)
{
	write_through = 0;
}
