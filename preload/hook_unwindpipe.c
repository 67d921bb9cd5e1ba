/* hook_unwindpipe.c: pipe2, for the stack unwinder's calls (see
 * spy_unwindpipe.h), and the checks the I/O hooks make on its pipe's
 * numbers. Every other pipe2 goes straight on to the C library.
 */
#include "spy_unwindpipe.h"

#include <errno.h>
#include <sys/stat.h>

#include "spy_core.h"
#include "spy_real.h"
#include "spy_stack.h"
#include "spy_sys.h"


/* The pipe's two numbers (-1: none) and what the kernel calls it. */
static int ends[2] = { -1, -1 };
static ino_t pipe_ino;

static int names_the_pipe(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) &&
	       st.st_ino == __atomic_load_n(&pipe_ino, __ATOMIC_RELAXED);
}

static int is_end(int fd)
{
	return fd >= 0 && (fd == __atomic_load_n(&ends[0], __ATOMIC_RELAXED) ||
			   fd == __atomic_load_n(&ends[1], __ATOMIC_RELAXED));
}

int spy_unwindpipe_stale(int fd)
{
	return SPY_UNLIKELY(is_end(fd)) && !names_the_pipe(fd);
}

int spy_unwindpipe_owns(int fd)
{
	return is_end(fd) && names_the_pipe(fd);
}

void spy_unwindpipe_disown(int fd)
{
	if (SPY_LIKELY(!is_end(fd)) || names_the_pipe(fd))
		return;
	for (int i = 0; i < 2; i++) {
		int e = fd;
		__atomic_compare_exchange_n(&ends[i], &e, -1, 0, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
	}
}

int spy_unwindpipe_close(int fd, const void *ret)
{
	if (SPY_LIKELY(!is_end(fd)) || !spy_stack_unwinder_owns(ret))
		return 0;
	int stale = !names_the_pipe(fd);
	for (int i = 0; i < 2; i++)
		if (__atomic_load_n(&ends[i], __ATOMIC_RELAXED) == fd)
			__atomic_store_n(&ends[i], -1, __ATOMIC_RELAXED);
	return stale;
}

SPY_EXPORT int pipe2(int fds[2], int flags)
{
	if (!spy_real_late((void **)&spy_real.pipe2, "pipe2"))
		return -1;
	int r = spy_real.pipe2(fds, flags);
	if (r != 0 || SPY_LIKELY(!spy_stack_unwinder_owns(__builtin_return_address(0))))
		return r;
	for (int i = 0; i < 2; i++)
		fds[i] = spy_sys_fd_high(fds[i]);
	if (fds[0] < 0 || fds[1] < 0) {
		/* no room under the program's limit: the unwinder does without
		 * (it then takes fewer frames for readable) */
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				spy_sys_close(fds[i]);
		errno = EMFILE;
		return -1;
	}
	struct stat st;
	if (fstat(fds[0], &st) == 0) {
		__atomic_store_n(&pipe_ino, st.st_ino, __ATOMIC_RELAXED);
		__atomic_store_n(&ends[0], fds[0], __ATOMIC_RELAXED);
		__atomic_store_n(&ends[1], fds[1], __ATOMIC_RELAXED);
	}
	return 0;
}
