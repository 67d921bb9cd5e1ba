/* hook_closefrom.c: closefrom and close_range, which a program calls to
 * close every descriptor it did not open itself: they close the
 * program's numbers and pass libspy's own by (spy_ownfd.h), so that the
 * trace outlives them, and the numbers start new files for the I/O
 * counts as after a close. The C library's own calls (posix_spawn's
 * child) do not come here; they are followed by an exec, which closes
 * libspy's anyway (close-on-exec).
 */
#include <errno.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rec_io.h"
#include "spy_core.h"
#include "spy_ownfd.h"
#include "spy_real.h"
#include "spy_sys.h"

/* The program's call: the C library's function, or the system call it
 * makes when libspy has not found the function (yet). */
static int range(unsigned first, unsigned last, int flags)
{
	int (*real)(unsigned, unsigned, int) =
		__atomic_load_n(&spy_real.close_range, __ATOMIC_ACQUIRE);
	if (real)
		return real(first, last, flags);
	return (int)spy_sys_raw(SYS_close_range, first, last, flags, 0, 0, 0);
}

/* Closes first..last, but for libspy's descriptors among them (keep, n
 * of them, ascending), one close_range for each stretch between; the
 * first failure stops it. The last stretch is left to the caller when
 * tail is 0. Returns the number after the last one kept, or -1. */
static long around(unsigned first, unsigned last, int flags, const int *keep,
		   int n, int tail)
{
	unsigned from = first;
	for (int i = 0; i < n; i++) {
		if ((unsigned)keep[i] > from &&
		    range(from, (unsigned)keep[i] - 1, flags) < 0)
			return -1;
		from = (unsigned)keep[i] + 1;
	}
	if (tail && from <= last && range(from, last, flags) < 0)
		return -1;
	return from;
}

/* Each number from first to last gets a new generation, as close() gives
 * it (rec_io.h), before the call: a site's calls on the file opened there
 * next are counted apart, and described as that file. */
static void closing(unsigned first, unsigned last)
{
	for (unsigned i = 0; i <= last - first && i < REC_IO_FD_GENS; i++)
		rec_io_fd_closed((int)(first + i));
}

SPY_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	/* marking close-on-exec spares libspy's (they have the flag), and a
	 * range that is no range fails as it would */
	if ((flags & CLOSE_RANGE_CLOEXEC) || first > last)
		return range(first, last, flags);
	closing(first, last);
	if (!spy_hook_enter())
		return range(first, last, flags);
	int keep[SPY_OWNFD_MAX];
	int n = spy_ownfd_within(first, last, keep);
	int r = n ? (around(first, last, flags, keep, n, 1) < 0 ? -1 : 0)
		  : range(first, last, flags);
	int saved = errno;
	spy_hook_leave();
	errno = saved;
	return r;
}

SPY_EXPORT void closefrom(int lowfd)
{
	void (*real)(int) = spy_real_late((void **)&spy_real.closefrom, "closefrom");
	unsigned from = lowfd < 0 ? 0 : (unsigned)lowfd;
	closing(from, ~0U);
	if (!spy_hook_enter()) {
		if (real)
			real(lowfd);
		else
			range(from, ~0U, 0);
		return;
	}
	int saved = errno;
	int keep[SPY_OWNFD_MAX];
	int n = spy_ownfd_within(from, ~0U, keep);
	if (n) {
		long next = around(from, ~0U, 0, keep, n, 0);
		if (next < 0) {
			/* a kernel without close_range (before 5.9): one number
			 * at a time below libspy's last one, as the C library
			 * does it without */
			for (unsigned fd = from; fd < (unsigned)keep[n - 1]; fd++)
				if (!spy_ownfd_is((int)fd))
					spy_sys_raw(SYS_close, fd, 0, 0, 0, 0, 0);
			next = keep[n - 1] + 1;
		}
		from = (unsigned)next;
	}
	errno = saved;
	/* the C library's own way for the rest (it reads /proc/self/fd on a
	 * kernel without close_range) */
	if (real)
		real((int)from);
	else
		range(from, ~0U, 0);
	saved = errno;
	spy_hook_leave();
	errno = saved;
}
