/* spy_sys.h: system calls and message formatting for libspy's own use.
 * Everything here is async-signal-safe: no allocation, no stdio, no locks,
 * and nothing goes through the functions libspy intercepts (raw syscall()).
 * Functions return what the kernel returns: -1 with errno on failure.
 */
#ifndef SPY_SYS_H
#define SPY_SYS_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

ssize_t spy_sys_write(int fd, const void *buf, size_t len);
/* Writes all of buf, retrying on EINTR and short writes; 0 or -1. */
int spy_sys_write_all(int fd, const void *buf, size_t len);
ssize_t spy_sys_read(int fd, void *buf, size_t len);
int spy_sys_open(const char *path, int flags, int mode);
int spy_sys_close(int fd);
/* fd moved to the lowest free number from SPY_FD_HIGH on, close-on-exec,
 * out of the low numbers a program expects to own; fd itself when that
 * fails. Under a limit on descriptors (ulimit -n) up to SPY_FD_PAST_MAX,
 * past the limit when it can be raised for a moment; else, under a limit
 * lower than SPY_FD_HIGH, from 16 below it; below SPY_FD_FLOOR it is
 * closed instead (-1, EMFILE): a program under so low a limit may need
 * every descriptor it has. */
#define SPY_FD_HIGH 900
/* Up to this limit on descriptors, libspy's go past it when it can be
 * raised for a moment (they take none of the program's numbers). */
#define SPY_FD_PAST_MAX 4096
#define SPY_FD_FLOOR 16
int spy_sys_fd_high(int fd);
/* libspy's own alternate signal stacks, past the program's view of them
 * (hook_thread.c's sigaltstack). */
int spy_sys_sigaltstack(const stack_t *ss, stack_t *old);
pid_t spy_sys_gettid(void);
/* The calling thread's id without a system call, read where glibc keeps
 * it (checked once against gettid by spy_sys_thread_tid_init); for a
 * thread made by pthread_create, not inside a vfork child. */
void spy_sys_thread_tid_init(void);
pid_t spy_sys_thread_tid(void);
pid_t spy_sys_getpid(void);
/* A system call made here, not through the syscall() libspy exports:
 * that one costs its argument list and checks for each call. For calls
 * that need no tally there (io calls are counted through it). */
long spy_sys_raw(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
/* The same, with the kernel's own result (-errno on failure) and errno
 * left alone: for the handler that makes a call on a program's behalf. */
long spy_sys_kernel(long nr, long a1, long a2, long a3, long a4, long a5,
		    long a6);
void *spy_sys_mmap(size_t len); /* anonymous, read-write; NULL on failure */
void spy_sys_munmap(void *p, size_t len);
uint64_t spy_now_ns(void);      /* CLOCK_MONOTONIC */
uint64_t spy_unix_ns(void);     /* CLOCK_REALTIME */

/* Reads a whole small file (/proc/self/...) into buf; returns bytes read
 * (at most cap) or -1. */
ssize_t spy_read_file(const char *path, char *buf, size_t cap);
/* One read of a /proc file the kernel makes at once (a schedstat, a task's
 * io: a read to see its end would be one system call more), ended with a
 * '\0' within cap bytes; returns the bytes read (0 when the read gave
 * none), or -1 when the file could not be opened. */
ssize_t spy_read_once(const char *path, char *buf, size_t cap);
/* The file size limit (ulimit -f) in bytes; UINT64_MAX for none. */
uint64_t spy_sys_fsize_limit(void);
/* The number after "name:" in a /proc text of such lines (status, io;
 * spaces or tabs between), 0 if absent. */
uint64_t spy_proc_field(const char *text, const char *name);
/* The two first numbers of a schedstat file (run and run-queue wait, ns):
 * 0, or -1 (both 0) when it cannot be read. */
int spy_proc_schedstat(const char *path, uint64_t *run, uint64_t *wait);
/* Calls fn with the name (its id, in decimal) of every thread the process
 * has now, from /proc/self/task, until fn returns nonzero. */
void spy_proc_each_task(int (*fn)(const char *tid, void *arg), void *arg);
/* The same over the numbered entries of any directory of /proc (a
 * process's fd directory); nothing when it cannot be opened. */
void spy_proc_each_number(const char *dir, int (*fn)(const char *name, void *arg),
			  void *arg);

/* A tiny formatter: %s %d %u %lu %zu %x %p %% only. Always terminates buf;
 * returns the length written. */
size_t spy_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
size_t spy_format(char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "spy: <message>\n" on stderr unless quiet; spy_error ignores quiet.
 * Left out when stderr is a regular file the line would grow past the
 * file size limit (never a SIGXFSZ). */
void spy_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void spy_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Small string helpers that never allocate. */
size_t spy_strlen(const char *s);
int spy_streq(const char *a, const char *b);
int spy_strneq(const char *a, const char *b, size_t n);
/* Copies at most cap-1 bytes and terminates; returns the length copied. */
size_t spy_strlcpy(char *dst, const char *src, size_t cap);
const char *spy_basename(const char *path);

#endif
