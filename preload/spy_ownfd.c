/* spy_ownfd.c: the numbers of libspy's own descriptors and the file each
 * is open on. Runs inside hooks and signal handlers: no allocation, no
 * lock (a slot being written has an odd count, and readers pass it by).
 */
#include "spy_ownfd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "spy_core.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "spy_unwindpipe.h"

/* A number is libspy's while it is open on the file it was noted with:
 * once the program has put a file of its own there (a dup2 libspy did
 * not see, a close that got past it), the number is the program's. */
static struct slot {
	unsigned seq;  /* odd while the slot is written */
	unsigned fd1;  /* the number + 1; 0: free */
	dev_t dev;
	ino_t ino;
} slots[SPY_OWNFD_MAX];

struct seen {
	unsigned seq;
	int fd; /* -1: free */
	dev_t dev;
	ino_t ino;
};

/* One consistent reading of s; -1 while it is being written. */
static int slot_read(const struct slot *s, struct seen *v)
{
	v->seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
	v->fd = (int)__atomic_load_n(&s->fd1, __ATOMIC_RELAXED) - 1;
	v->dev = __atomic_load_n(&s->dev, __ATOMIC_RELAXED);
	v->ino = __atomic_load_n(&s->ino, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return (v->seq & 1) || __atomic_load_n(&s->seq, __ATOMIC_RELAXED) != v->seq
		       ? -1 : 0;
}

static int still_open(const struct seen *v)
{
	struct stat st;
	return v->fd >= 0 && fstat(v->fd, &st) == 0 && st.st_dev == v->dev &&
	       st.st_ino == v->ino;
}

/* 1 if some slot holds the number (whatever it is open on now). */
static int noted(int fd)
{
	if (fd < 0)
		return 0;
	for (int i = 0; i < SPY_OWNFD_MAX; i++)
		if (__atomic_load_n(&slots[i].fd1, __ATOMIC_RELAXED) == (unsigned)fd + 1)
			return 1;
	return 0;
}

void spy_ownfd_taken(int fd)
{
	spy_unwindpipe_disown(fd);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		return;
	/* the slot that had the number, else a free one, else one whose
	 * descriptor is gone (closed by libspy, or the program's now) */
	for (int pass = 0; pass < 3; pass++) {
		for (int i = 0; i < SPY_OWNFD_MAX; i++) {
			struct slot *s = &slots[i];
			struct seen v;
			if (slot_read(s, &v) < 0)
				continue;
			if (pass == 0 ? v.fd != fd
				      : pass == 1 ? v.fd >= 0 : still_open(&v))
				continue;
			unsigned q = v.seq;
			if (!__atomic_compare_exchange_n(&s->seq, &q, q + 1, 0,
							 __ATOMIC_ACQ_REL,
							 __ATOMIC_RELAXED))
				continue;
			__atomic_store_n(&s->fd1, (unsigned)fd + 1, __ATOMIC_RELAXED);
			__atomic_store_n(&s->dev, st.st_dev, __ATOMIC_RELAXED);
			__atomic_store_n(&s->ino, st.st_ino, __ATOMIC_RELAXED);
			__atomic_store_n(&s->seq, q + 2, __ATOMIC_RELEASE);
			return;
		}
	}
}

int spy_ownfd_is(int fd)
{
	if (SPY_LIKELY(!noted(fd)))
		return 0;
	int saved = errno, own = 0;
	for (int i = 0; i < SPY_OWNFD_MAX && !own; i++) {
		struct seen v;
		own = slot_read(&slots[i], &v) == 0 && v.fd == fd && still_open(&v);
	}
	errno = saved;
	return own;
}

/* 1 when the call is the program's (not libspy's own, not the
 * unwinder's) and fd is libspy's; the guard is held then, to be left by
 * the caller. */
static inline __attribute__((always_inline)) int
programs_call_on_own(int fd, const void *ret)
{
	if (SPY_LIKELY(!noted(fd)) || spy_stack_unwinder_owns(ret) ||
	    !spy_hook_enter())
		return 0;
	if (spy_ownfd_is(fd))
		return 1;
	spy_hook_leave();
	return 0;
}

int spy_ownfd_keep(int fd, const void *ret)
{
	int saved = errno;
	int kept = programs_call_on_own(fd, ret);
	if (SPY_UNLIKELY(kept))
		spy_hook_leave();
	errno = saved;
	return kept;
}

void spy_ownfd_make_way(int from, int to, const void *ret)
{
	int saved = errno;
	if (SPY_LIKELY(!programs_call_on_own(to, ret))) {
		errno = saved;
		return;
	}
	/* the pipe's ends are the unwinder's numbers, which no copy would
	 * change: its own checks see them go (spy_unwindpipe_stale); and
	 * a call that will fail leaves the trace where it is, with no copy
	 * left over */
	if (!spy_unwindpipe_owns(to) &&
	    spy_sys_raw(SYS_fcntl, from, F_GETFD, 0, 0, 0, 0) >= 0) {
		int copy = (int)spy_sys_raw(SYS_fcntl, to, F_DUPFD_CLOEXEC,
					    (long)to + 1, 0, 0, 0);
		if (copy >= 0)
			spy_sys_fd_high(copy);
	}
	spy_hook_leave();
	errno = saved;
}

int spy_ownfd_within(unsigned first, unsigned last, int out[SPY_OWNFD_MAX])
{
	int n = 0, saved = errno;
	for (int i = 0; i < SPY_OWNFD_MAX; i++) {
		struct seen v;
		if (slot_read(&slots[i], &v) < 0 || v.fd < 0 ||
		    (unsigned)v.fd < first || (unsigned)v.fd > last ||
		    !still_open(&v))
			continue;
		int j = n, dup = 0;
		for (int k = 0; k < n; k++)
			dup |= out[k] == v.fd;
		if (dup)
			continue;
		for (; j > 0 && out[j - 1] > v.fd; j--)
			out[j] = out[j - 1];
		out[j] = v.fd;
		n++;
	}
	errno = saved;
	return n;
}

int spy_ownfd_on(dev_t dev, ino_t ino)
{
	int saved = errno, fd = -1;
	for (int i = 0; i < SPY_OWNFD_MAX && fd < 0; i++) {
		struct seen v;
		if (slot_read(&slots[i], &v) == 0 && v.dev == dev &&
		    v.ino == ino && still_open(&v))
			fd = v.fd;
	}
	errno = saved;
	return fd;
}
