/* spy_sys.c: raw system calls and a formatter for libspy's own messages.
 * May run inside any hook or signal handler: never allocate, never use
 * stdio, never call an intercepted function.
 */
#include "spy_sys.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "spy_core.h"
#include "spy_options.h"
#include "spy_ownfd.h"
#include "spy_ownmem.h"

ssize_t spy_sys_write(int fd, const void *buf, size_t len)
{
	return syscall(SYS_write, fd, buf, len);
}

int spy_sys_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = spy_sys_write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t spy_sys_read(int fd, void *buf, size_t len)
{
	return syscall(SYS_read, fd, buf, len);
}

int spy_sys_open(const char *path, int flags, int mode)
{
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

/* Past the exported syscall(), which keeps libspy's descriptors from the
 * program's closes (spy_ownfd.h): these are libspy's own. */
int spy_sys_close(int fd)
{
	return (int)spy_sys_raw(SYS_close, fd, 0, 0, 0, 0, 0);
}

/* fd moved to at least the limit on descriptors, where the program can
 * open nothing, with the limit raised for the moment of the move (above
 * the hard limit too when the process may: root). -1 when it cannot be. */
static int fd_past_limit(int fd, const struct rlimit *rl)
{
	struct rlimit up = *rl;
	up.rlim_cur = rl->rlim_cur + 16;
	if (rl->rlim_max != RLIM_INFINITY && rl->rlim_max < up.rlim_cur)
		up.rlim_max = up.rlim_cur;
	if (syscall(SYS_setrlimit, RLIMIT_NOFILE, &up) != 0)
		return -1;
	int high = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, (long)rl->rlim_cur);
	syscall(SYS_setrlimit, RLIMIT_NOFILE, rl);
	if (high < 0)
		return -1;
	spy_sys_close(fd);
	return high;
}

static int fd_high(int fd)
{
	long base = SPY_FD_HIGH;
	struct rlimit rl;
	int lim = syscall(SYS_getrlimit, RLIMIT_NOFILE, &rl) == 0;
	/* Under a usual limit (ulimit -n 1024, 4096), a number under it is
	 * one the program could have opened: a server at its limit would
	 * accept fewer connections. Past it when the limit can be raised
	 * for a moment; not past a big one, whose table of descriptors
	 * every fork would copy. */
	if (lim && rl.rlim_cur <= SPY_FD_PAST_MAX) {
		int high = fd_past_limit(fd, &rl);
		if (high >= 0)
			return high;
	}
	if (lim && rl.rlim_cur < (rlim_t)base + 16) {
		/* Under a lower limit (ulimit -n 256) that cannot be raised
		 * for a moment: just below it, unless that is among the few a
		 * program under a tiny limit needs. */
		base = (long)rl.rlim_cur - 16;
		if (base < SPY_FD_FLOOR) {
			spy_sys_close(fd);
			errno = EMFILE;
			return -1;
		}
	}
	if (base <= fd)
		return fd;
	int high = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, base);
	if (high < 0)
		return fd;
	spy_sys_close(fd);
	return high;
}

int spy_sys_fd_high(int fd)
{
	int high = fd_high(fd);
	/* the number is libspy's now, whatever it was: a program that closed
	 * every descriptor took the unwinder's pipe with them, and a fork
	 * child's trace then got the pipe's old number, on which the
	 * unwinder's calls (and so libspy's own, through the same hooks)
	 * fail: the child wrote no trace and said so on the program's
	 * stderr (varnishd shows its compiler's stderr). Noted, so that the
	 * program's closes pass it by from now on. */
	if (high >= 0)
		spy_ownfd_taken(high);
	return high;
}

long spy_sys_kernel(long nr, long a1, long a2, long a3, long a4, long a5,
		    long a6)
{
	long r;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8),
			   "r"(r9)
			 : "rcx", "r11", "memory");
	return r;
}

long spy_sys_raw(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long r = spy_sys_kernel(nr, a1, a2, a3, a4, a5, a6);
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/* Every new thread sets one: straight to the kernel. */
int spy_sys_sigaltstack(const stack_t *ss, stack_t *old)
{
	return (int)spy_sys_raw(SYS_sigaltstack, (long)ss, (long)old, 0, 0, 0, 0);
}

pid_t spy_sys_gettid(void)
{
	return (pid_t)spy_sys_raw(SYS_gettid, 0, 0, 0, 0, 0, 0);
}

/* Where glibc keeps a thread's id in its descriptor (struct pthread): it
 * publishes the offset for debuggers (libthread_db) in a three-word
 * descriptor, bits, count, offset. -1 until found and checked. */
static long tid_offset = -1;

void spy_sys_thread_tid_init(void)
{
	const uint32_t *d = dlsym(RTLD_DEFAULT, "_thread_db_pthread_tid");
	if (!d || d[0] != 8 * sizeof(pid_t) || d[2] >= 4096)
		return;
	const pid_t *p = (const pid_t *)((const char *)pthread_self() + d[2]);
	if (*p == spy_sys_gettid())
		tid_offset = d[2];
}

pid_t spy_sys_thread_tid(void)
{
	if (tid_offset >= 0) {
		pid_t tid = *(const pid_t *)((const char *)pthread_self() + tid_offset);
		if (tid > 0)
			return tid;
	}
	return spy_sys_gettid();
}

pid_t spy_sys_getpid(void)
{
	return (pid_t)spy_sys_raw(SYS_getpid, 0, 0, 0, 0, 0, 0);
}

void *spy_sys_mmap(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	spy_ownmem_note(p, len);
	return p;
}

void spy_sys_munmap(void *p, size_t len)
{
	if (p) {
		spy_ownmem_forget(p, len);
		munmap(p, len);
	}
}

uint64_t spy_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t spy_unix_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

ssize_t spy_read_file(const char *path, char *buf, size_t cap)
{
	int fd = spy_sys_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got < cap) {
		ssize_t n = spy_sys_read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	spy_sys_close(fd);
	return (ssize_t)got;
}

ssize_t spy_read_once(const char *path, char *buf, size_t cap)
{
	int fd = spy_sys_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	ssize_t n = spy_sys_read(fd, buf, cap - 1);
	spy_sys_close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return n;
}

uint64_t spy_proc_field(const char *text, const char *name)
{
	size_t len = spy_strlen(name);
	for (const char *p = text; *p;) {
		if (spy_strneq(p, name, len) && p[len] == ':') {
			p += len + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			uint64_t v = 0;
			while (*p >= '0' && *p <= '9')
				v = v * 10 + (uint64_t)(*p++ - '0');
			return v;
		}
		while (*p && *p != '\n')
			p++;
		if (*p)
			p++;
	}
	return 0;
}

int spy_proc_schedstat(const char *path, uint64_t *run, uint64_t *wait)
{
	char buf[96];
	*run = *wait = 0;
	if (spy_read_once(path, buf, sizeof(buf)) <= 0)
		return -1;
	const char *p = buf;
	uint64_t v[2] = { 0, 0 };
	for (int i = 0; i < 2; i++) {
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			v[i] = v[i] * 10 + (uint64_t)(*p++ - '0');
	}
	*run = v[0];
	*wait = v[1];
	return 0;
}

/* What getdents64 fills its buffer with. */
struct task_dirent {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

void spy_proc_each_task(int (*fn)(const char *tid, void *arg), void *arg)
{
	spy_proc_each_number("/proc/self/task", fn, arg);
}

void spy_proc_each_number(const char *path, int (*fn)(const char *name, void *arg),
			  void *arg)
{
	int dir = spy_sys_open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dir < 0)
		return;
	char buf[2048];
	int stop = 0;
	while (!stop) {
		long n = syscall(SYS_getdents64, dir, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (long off = 0; off < n && !stop;) {
			struct task_dirent *d = (void *)(buf + off);
			off += d->reclen;
			if (d->name[0] >= '0' && d->name[0] <= '9')
				stop = fn(d->name, arg);
		}
	}
	spy_sys_close(dir);
}

static size_t put_unsigned(char *out, uint64_t v, unsigned base)
{
	char tmp[24];
	size_t n = 0;
	do {
		unsigned d = (unsigned)(v % base);
		tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

size_t spy_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
	size_t len = 0;
	if (cap == 0)
		return 0;
#define PUT(c) do { if (len + 1 < cap) buf[len++] = (c); } while (0)
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			PUT(*f);
			continue;
		}
		f++;
		int is_long = 0;
		while (*f == 'l' || *f == 'z') {
			is_long = 1;
			f++;
		}
		char num[24];
		size_t n = 0;
		switch (*f) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			for (s = s ? s : "(null)"; *s; s++)
				PUT(*s);
			continue;
		}
		case 'd': {
			int64_t v = is_long ? va_arg(ap, long) : va_arg(ap, int);
			if (v < 0) {
				PUT('-');
				v = -v;
			}
			n = put_unsigned(num, (uint64_t)v, 10);
			break;
		}
		case 'u':
			n = put_unsigned(num, is_long ? va_arg(ap, unsigned long)
						      : va_arg(ap, unsigned), 10);
			break;
		case 'x':
			n = put_unsigned(num, is_long ? va_arg(ap, unsigned long)
						      : va_arg(ap, unsigned), 16);
			break;
		case 'p':
			PUT('0');
			PUT('x');
			n = put_unsigned(num, (uintptr_t)va_arg(ap, void *), 16);
			break;
		case '%':
			PUT('%');
			continue;
		default:
			continue;
		}
		for (size_t i = 0; i < n; i++)
			PUT(num[i]);
		if (!*f)
			break;
	}
#undef PUT
	buf[len] = '\0';
	return len;
}

size_t spy_format(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = spy_vformat(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}

uint64_t spy_sys_fsize_limit(void)
{
	/* getrlimit is prlimit64, which the C library's own start made:
	 * allowed by a filter the program started under */
	struct rlimit rl;
	if (getrlimit(RLIMIT_FSIZE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return UINT64_MAX;
	return (uint64_t)rl.rlim_cur;
}

/* 1 if n more bytes go on fd without growing a regular file past the file
 * size limit (ulimit -f): that raises SIGXFSZ, whose default action kills
 * the program, and blocking it would only leave it pending for later. */
static int fits_size_limit(int fd, size_t n)
{
	uint64_t limit = spy_sys_fsize_limit();
	struct stat st;
	if (limit == UINT64_MAX || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return 1;
	uint64_t at = (uint64_t)st.st_size;
	/* a write not appended goes at the offset, past the end once the
	 * file was cut short under it (a log rotated by truncation); not
	 * asked under a filter libspy started under (one call fewer) */
	if (spy_state != SPY_STATE_OFF) {
		off_t pos = lseek(fd, 0, SEEK_CUR);
		if (pos > 0 && (uint64_t)pos > at)
			at = (uint64_t)pos;
	}
	return at + n <= limit;
}

static void say(const char *fmt, va_list ap)
{
	char line[512];
	int saved = errno;
	size_t n = spy_format(line, sizeof(line), "spy: ");
	n += spy_vformat(line + n, sizeof(line) - n - 1, fmt, ap);
	line[n++] = '\n';
	/* the whole line or nothing: the rest of a cut one would be written
	 * at the limit itself */
	if (fits_size_limit(2, n))
		spy_sys_write_all(2, line, n);
	errno = saved;
}

void spy_say(const char *fmt, ...)
{
	if (spy_opt.quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
}

void spy_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
}

size_t spy_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int spy_streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

int spy_strneq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i] != b[i])
			return 0;
		if (!a[i])
			return 1;
	}
	return 1;
}

size_t spy_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t n = 0;
	if (cap == 0)
		return 0;
	while (src[n] && n + 1 < cap) {
		dst[n] = src[n];
		n++;
	}
	dst[n] = '\0';
	return n;
}

const char *spy_basename(const char *path)
{
	const char *base = path;
	for (const char *p = path; *p; p++)
		if (*p == '/' && p[1])
			base = p + 1;
	return base;
}
