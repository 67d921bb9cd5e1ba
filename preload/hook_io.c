/* hook_io.c: the read- and write-class calls (write, writev, pwrite*,
 * send*, read, readv, pread*, recv*), counted by rec_io per call site.
 *
 * Two ways in, one hook per call. Through the PLT: the program's own calls
 * (and CPython's, libstdc++'s filebuf, ...) reach these exported functions
 * by symbol interposition. From inside libc: stdio calls __write directly,
 * past any PLT; libc's entries are therefore patched (spy_patch.h) to jump
 * here too, and the real function is then the trampoline that spy_patch
 * built, so a call is never counted twice. When a patch is refused, the
 * PLT path still works and the trace says which entries were left alone.
 * Hook rules: docs/CODING.md.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "rec_io.h"
#include "spy_core.h"
#include "spy_options.h"
#include "spy_ownfd.h"
#include "spy_patch.h"
#include "spy_process.h"
#include "spy_qprotect.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "spy_unwindpipe.h"
#include "spy_writer.h"
#include "trace_encode.h"

/* The functions called for the original behaviour: libc's, or the
 * trampolines of patched entries. NULL before start-up has found them;
 * a hook then makes the system call itself. */
static struct {
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*pwrite64)(int, const void *, size_t, off_t);
	ssize_t (*pwritev)(int, const struct iovec *, int, off_t);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*sendto)(int, const void *, size_t, int,
			  const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*pread64)(int, void *, size_t, off_t);
	ssize_t (*preadv)(int, const struct iovec *, int, off_t);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *,
			    socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*write_nocancel)(int, const void *, size_t);
	long (*syscall)(long, ...);
	int (*close)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
} io_real;

/* A hook: before start-up the system call itself; with the guard taken
 * (libspy's own calls, nested calls) straight through; else counted.
 * size is what the call asks for; r_ (the result) for vector calls, whose
 * vectors are the kernel's to check, not ours to read. */
#define IO_HOOK(T, name, fn_code, params, args, fd, size, fallback, lift)   \
	SPY_EXPORT T name params                                               \
	{                                                                      \
		if (SPY_UNLIKELY(!io_real.name))                               \
			return (T)(fallback);                                  \
		if (!spy_hook_enter()) {                                       \
			if (SPY_UNLIKELY(spy_unwindpipe_stale(fd))) {          \
				errno = EBADF;                                 \
				return (T)-1;                                  \
			}                                                      \
			rec_io_passed(fn_code);                                \
			return io_real.name args;                              \
		}                                                              \
		REC_IO_HOOK(T, fn_code, fd, size,                              \
			    HELD_RETRY(T, io_real.name args, lift));           \
	}

/* The call, made once more when it failed only because its buffer lies on
 * pages libspy made inaccessible (a freed block held in quarantine,
 * spy_qprotect.h): the program gets what it would have got without
 * libspy, and the trace the use after free. lift: the spy_qprotect_lift
 * call for the call's buffer or vector, with RET for the call site. The
 * call itself may block: parked (spy_core.h). */
#define RET ((uintptr_t)__builtin_return_address(0))
#define HELD_RETRY(T, call, lift)                                             \
	({                                                                     \
		T h_ = SPY_PARKED(call);                                       \
		if (SPY_UNLIKELY(h_ < 0 && errno == EFAULT) && spy_tracing) {  \
			int he_ = errno;                                       \
			if (lift)                                              \
				h_ = SPY_PARKED(call);                         \
			else                                                   \
				errno = he_;                                   \
		}                                                              \
		h_;                                                            \
	})

#define VEC_SIZE (r_ > 0 ? (uint64_t)r_ : 0)

IO_HOOK(ssize_t, write, TRACE_IO_WRITE, (int fd, const void *buf, size_t n),
	(fd, buf, n), fd, n, syscall(SYS_write, fd, buf, n),
	spy_qprotect_lift(buf, n, 0, RET))
IO_HOOK(ssize_t, writev, TRACE_IO_WRITEV,
	(int fd, const struct iovec *iov, int cnt), (fd, iov, cnt), fd,
	VEC_SIZE, syscall(SYS_writev, fd, iov, cnt),
	spy_qprotect_lift_vec(iov, cnt, 0, RET))
IO_HOOK(ssize_t, pwrite64, TRACE_IO_PWRITE,
	(int fd, const void *buf, size_t n, off_t off), (fd, buf, n, off), fd,
	n, syscall(SYS_pwrite64, fd, buf, n, off),
	spy_qprotect_lift(buf, n, 0, RET))
IO_HOOK(ssize_t, pwritev, TRACE_IO_PWRITEV,
	(int fd, const struct iovec *iov, int cnt, off_t off),
	(fd, iov, cnt, off), fd, VEC_SIZE,
	syscall(SYS_pwritev, fd, iov, cnt, off, 0),
	spy_qprotect_lift_vec(iov, cnt, 0, RET))
IO_HOOK(ssize_t, send, TRACE_IO_SEND,
	(int fd, const void *buf, size_t n, int flags), (fd, buf, n, flags),
	fd, n, syscall(SYS_sendto, fd, buf, n, flags, NULL, 0),
	spy_qprotect_lift(buf, n, 0, RET))
IO_HOOK(ssize_t, sendto, TRACE_IO_SENDTO,
	(int fd, const void *buf, size_t n, int flags,
	 const struct sockaddr *to, socklen_t tolen),
	(fd, buf, n, flags, to, tolen), fd, n,
	syscall(SYS_sendto, fd, buf, n, flags, to, tolen),
	spy_qprotect_lift(buf, n, 0, RET))
IO_HOOK(ssize_t, sendmsg, TRACE_IO_SENDMSG,
	(int fd, const struct msghdr *msg, int flags), (fd, msg, flags), fd,
	VEC_SIZE, syscall(SYS_sendmsg, fd, msg, flags),
	spy_qprotect_lift_msg(msg, 0, RET))
IO_HOOK(ssize_t, read, TRACE_IO_READ, (int fd, void *buf, size_t n),
	(fd, buf, n), fd, n, syscall(SYS_read, fd, buf, n),
	spy_qprotect_lift(buf, n, 1, RET))
IO_HOOK(ssize_t, readv, TRACE_IO_READV,
	(int fd, const struct iovec *iov, int cnt), (fd, iov, cnt), fd,
	VEC_SIZE, syscall(SYS_readv, fd, iov, cnt),
	spy_qprotect_lift_vec(iov, cnt, 1, RET))
IO_HOOK(ssize_t, pread64, TRACE_IO_PREAD,
	(int fd, void *buf, size_t n, off_t off), (fd, buf, n, off), fd, n,
	syscall(SYS_pread64, fd, buf, n, off),
	spy_qprotect_lift(buf, n, 1, RET))
IO_HOOK(ssize_t, preadv, TRACE_IO_PREADV,
	(int fd, const struct iovec *iov, int cnt, off_t off),
	(fd, iov, cnt, off), fd, VEC_SIZE,
	syscall(SYS_preadv, fd, iov, cnt, off, 0),
	spy_qprotect_lift_vec(iov, cnt, 1, RET))
IO_HOOK(ssize_t, recv, TRACE_IO_RECV,
	(int fd, void *buf, size_t n, int flags), (fd, buf, n, flags), fd, n,
	syscall(SYS_recvfrom, fd, buf, n, flags, NULL, NULL),
	spy_qprotect_lift(buf, n, 1, RET))
IO_HOOK(ssize_t, recvfrom, TRACE_IO_RECVFROM,
	(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
	 socklen_t *fromlen),
	(fd, buf, n, flags, from, fromlen), fd, n,
	syscall(SYS_recvfrom, fd, buf, n, flags, from, fromlen),
	spy_qprotect_lift(buf, n, 1, RET))
IO_HOOK(ssize_t, recvmsg, TRACE_IO_RECVMSG,
	(int fd, struct msghdr *msg, int flags), (fd, msg, flags), fd,
	VEC_SIZE, syscall(SYS_recvmsg, fd, msg, flags),
	spy_qprotect_lift_msg(msg, 1, RET))

/* The other names of the same functions (on 64-bit glibc, off_t is 64
 * bits and these are aliases). */
SPY_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (SPY_UNLIKELY(!io_real.pwrite64))
		return syscall(SYS_pwrite64, fd, buf, n, off);
	if (!spy_hook_enter()) {
		rec_io_passed(TRACE_IO_PWRITE);
		return io_real.pwrite64(fd, buf, n, off);
	}
	REC_IO_HOOK(ssize_t, TRACE_IO_PWRITE, fd, n,
		    HELD_RETRY(ssize_t, io_real.pwrite64(fd, buf, n, off),
			       spy_qprotect_lift(buf, n, 0, RET)));
}

SPY_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	if (SPY_UNLIKELY(!io_real.pread64))
		return syscall(SYS_pread64, fd, buf, n, off);
	if (!spy_hook_enter()) {
		rec_io_passed(TRACE_IO_PREAD);
		return io_real.pread64(fd, buf, n, off);
	}
	REC_IO_HOOK(ssize_t, TRACE_IO_PREAD, fd, n,
		    HELD_RETRY(ssize_t, io_real.pread64(fd, buf, n, off),
			       spy_qprotect_lift(buf, n, 1, RET)));
}

SPY_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev(fd, iov, cnt, off);
}

SPY_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return preadv(fd, iov, cnt, off);
}

/* stdio's writes on streams opened with "c" (no cancellation) go here;
 * reached only through its patched entry. */
static ssize_t write_nocancel_hook(int fd, const void *buf, size_t n)
{
	if (!spy_hook_enter()) {
		rec_io_passed(TRACE_IO_WRITE);
		return io_real.write_nocancel(fd, buf, n);
	}
	REC_IO_HOOK(ssize_t, TRACE_IO_WRITE, fd, n,
		    HELD_RETRY(ssize_t, io_real.write_nocancel(fd, buf, n),
			       spy_qprotect_lift(buf, n, 0, RET)));
}

/* ---- close, dup2, dup3: a descriptor number gets a new file ----------- */

/* Nothing is recorded: the number's generation moves on (before the call,
 * so that no call on the next file can still find the old slot). A close
 * of one of libspy's own descriptors fails as it would without libspy,
 * where the number was not open (spy_ownfd.h). */
SPY_EXPORT int close(int fd)
{
	const void *ret = __builtin_return_address(0);
	if (SPY_UNLIKELY(spy_unwindpipe_close(fd, ret)))
		return 0;
	if (SPY_UNLIKELY(spy_ownfd_keep(fd, ret))) {
		errno = EBADF;
		return -1;
	}
	rec_io_fd_closed(fd);
	if (SPY_UNLIKELY(!io_real.close))
		return (int)syscall(SYS_close, fd);
	return io_real.close(fd);
}

/* dup2 or dup3 onto one of libspy's numbers puts the program's file there
 * as without libspy; the trace moves out of the way first. */
SPY_EXPORT int dup2(int from, int to)
{
	if (from != to) {
		spy_ownfd_make_way(from, to, __builtin_return_address(0));
		rec_io_fd_closed(to);
	}
	if (SPY_UNLIKELY(!io_real.dup2))
		return (int)syscall(SYS_dup2, from, to);
	return io_real.dup2(from, to);
}

SPY_EXPORT int dup3(int from, int to, int flags)
{
	if (from != to && !(flags & ~O_CLOEXEC))
		spy_ownfd_make_way(from, to, __builtin_return_address(0));
	rec_io_fd_closed(to);
	if (SPY_UNLIKELY(!io_real.dup3))
		return (int)syscall(SYS_dup3, from, to, flags);
	return io_real.dup3(from, to, flags);
}

/* stdio's fclose calls __close from inside libc. */
static int close_hook(int fd)
{
	if (SPY_UNLIKELY(spy_ownfd_keep(fd, __builtin_return_address(0)))) {
		errno = EBADF;
		return -1;
	}
	rec_io_fd_closed(fd);
	return io_real.close(fd);
}

/* ---- syscall(): the program's own system calls by number ------------- */

/* The I/O call a system call number is, or TRACE_IO_FN_MAX. */
static unsigned io_fn_of(long nr)
{
	switch (nr) {
	case SYS_write: return TRACE_IO_WRITE;
	case SYS_writev: return TRACE_IO_WRITEV;
	case SYS_pwrite64: return TRACE_IO_PWRITE;
	case SYS_pwritev: return TRACE_IO_PWRITEV;
	case SYS_sendto: return TRACE_IO_SENDTO;
	case SYS_sendmsg: return TRACE_IO_SENDMSG;
	case SYS_read: return TRACE_IO_READ;
	case SYS_readv: return TRACE_IO_READV;
	case SYS_pread64: return TRACE_IO_PREAD;
	case SYS_preadv: return TRACE_IO_PREADV;
	case SYS_recvfrom: return TRACE_IO_RECVFROM;
	case SYS_recvmsg: return TRACE_IO_RECVMSG;
	default: return TRACE_IO_FN_MAX;
	}
}

/* syscall(SYS_close, ...) and the like: what the functions of the same
 * name do (close, close_range, dup2, dup3). */
static long fd_call(long nr, long a1, long a2, long a3, long a4, long a5,
		    long a6, const void *ret)
{
	switch (nr) {
	case SYS_close:
		if (spy_ownfd_keep((int)a1, ret)) {
			errno = EBADF;
			return -1;
		}
		rec_io_fd_closed((int)a1);
		break;
	case SYS_close_range:
		return close_range((unsigned)a1, (unsigned)a2, (int)a3);
	case SYS_dup2:
	case SYS_dup3:
		if (a1 != a2 && (nr == SYS_dup2 || !(a3 & ~(long)O_CLOEXEC)))
			spy_ownfd_make_way((int)a1, (int)a2, ret);
		if (a1 != a2 || nr == SYS_dup3)
			rec_io_fd_closed((int)a2);
		break;
	}
	return io_real.syscall(nr, a1, a2, a3, a4, a5, a6);
}

/* syscall(SYS_write, ...) is a write the program makes past libc's write:
 * counted like one. (libspy's own syscall() calls come here too, with the
 * guard held: they pass straight through, and are only tallied for the
 * kernel cross-check.) Six arguments are always passed on, as libc's
 * syscall() itself always reads six. */
SPY_EXPORT long syscall(long nr, ...)
{
	va_list ap;
	va_start(ap, nr);
	long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
	long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
	va_end(ap);
	if (SPY_UNLIKELY(!io_real.syscall)) /* before start-up found it */
		return spy_sys_raw(nr, a1, a2, a3, a4, a5, a6);
	unsigned fn = io_fn_of(nr);
	if (SPY_LIKELY(fn == TRACE_IO_FN_MAX)) {
		if (SPY_UNLIKELY(nr == SYS_seccomp || nr == SYS_prctl))
			spy_process_check_seccomp(nr, a1, a2, a3);
		if (SPY_UNLIKELY(nr == SYS_close || nr == SYS_close_range ||
				 nr == SYS_dup2 || nr == SYS_dup3))
			return fd_call(nr, a1, a2, a3, a4, a5, a6,
				       __builtin_return_address(0));
		return io_real.syscall(nr, a1, a2, a3, a4, a5, a6);
	}
	if (!spy_hook_enter()) {
		if (SPY_UNLIKELY(spy_unwindpipe_stale((int)a1))) {
			errno = EBADF;
			return -1;
		}
		rec_io_passed(fn);
		return io_real.syscall(nr, a1, a2, a3, a4, a5, a6);
	}
	int vec = fn == TRACE_IO_WRITEV || fn == TRACE_IO_PWRITEV ||
		  fn == TRACE_IO_SENDMSG || fn == TRACE_IO_READV ||
		  fn == TRACE_IO_PREADV || fn == TRACE_IO_RECVMSG;
	REC_IO_HOOK(long, fn, (int)a1, vec ? VEC_SIZE : (uint64_t)a3,
		    SPY_PARKED(io_real.syscall(nr, a1, a2, a3, a4, a5, a6)));
}

/* ---- start-up: find the real functions, patch libc's entries ---------- */

struct entry {
	const char *name;
	void **real;
	void *hook;
	unsigned fn;
};

unsigned rec_io_patch_libc(int patch)
{
#define E(name_, fn_) { #name_, (void **)&io_real.name_, (void *)name_, fn_ }
	struct entry entries[] = {
		E(write, TRACE_IO_WRITE), E(writev, TRACE_IO_WRITEV),
		E(pwrite64, TRACE_IO_PWRITE), E(pwritev, TRACE_IO_PWRITEV),
		E(send, TRACE_IO_SEND), E(sendto, TRACE_IO_SENDTO),
		E(sendmsg, TRACE_IO_SENDMSG), E(read, TRACE_IO_READ),
		E(readv, TRACE_IO_READV), E(pread64, TRACE_IO_PREAD),
		E(preadv, TRACE_IO_PREADV), E(recv, TRACE_IO_RECV),
		E(recvfrom, TRACE_IO_RECVFROM), E(recvmsg, TRACE_IO_RECVMSG),
		{ "__write_nocancel", (void **)&io_real.write_nocancel,
		  (void *)write_nocancel_hook, TRACE_IO_WRITE },
		{ "close", (void **)&io_real.close, (void *)close_hook,
		  TRACE_IO_FN_MAX },
	};
#undef E
	enum { N = sizeof(entries) / sizeof(entries[0]) };
	void *addr[N], *tramp[N];
	for (int i = 0; i < N; i++)
		addr[i] = dlsym(RTLD_NEXT, entries[i].name);
	*(void **)&io_real.syscall = dlsym(RTLD_NEXT, "syscall");
	*(void **)&io_real.dup2 = dlsym(RTLD_NEXT, "dup2");
	*(void **)&io_real.dup3 = dlsym(RTLD_NEXT, "dup3");
	if (!patch) {
		for (int i = 0; i < N; i++)
			*entries[i].real = addr[i];
		return 0;
	}
	char refused[512];
	size_t used = 0;
	refused[0] = '\0';
	for (int i = 0; i < N; i++) {
		const char *why = NULL;
		tramp[i] = addr[i] ? spy_patch_entry(addr[i], entries[i].hook, &why)
				   : NULL;
		if (!tramp[i] && addr[i] && used < sizeof(refused) - 64)
			used += spy_format(refused + used, sizeof(refused) - used,
					   "%s%s (%s)", used ? ", " : "",
					   entries[i].name, why ? why : "?");
	}
	/* The trampolines must be callable before any entry jumps to a hook
	 * that calls them; if they cannot be, nothing is patched. */
	if (spy_patch_seal() < 0) {
		for (int i = 0; i < N; i++)
			*entries[i].real = addr[i];
		spy_writer_note(0, "io: libc entries not patched (no executable "
				"memory near libc); stdio's own writes are not "
				"counted");
		return 0;
	}
	for (int i = 0; i < N; i++)
		*entries[i].real = tramp[i] ? tramp[i] : addr[i];
	spy_patch_apply();
	unsigned mask = 0;
	for (int i = 0; i < N; i++) {
		if (tramp[i] && spy_patch_applied(addr[i]) &&
		    entries[i].fn < TRACE_IO_FN_MAX)
			mask |= 1u << entries[i].fn;
	}
	int prepared = 0;
	for (int i = 0; i < N; i++)
		prepared |= tramp[i] != NULL;
	if (prepared && !mask)
		spy_writer_note(0, "io: libc entries not patched (the process "
				"had more than one thread, or libc's code could "
				"not be made writable); stdio's own writes are "
				"not counted");
	if (used) {
		char text[640];
		spy_format(text, sizeof(text),
			   "io: libc entries left unpatched (PLT calls only): %s",
			   refused);
		spy_writer_note(0, text);
	}
	return mask;
}
