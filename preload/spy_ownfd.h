/* spy_ownfd.h: the descriptors libspy keeps open for itself (the trace,
 * the stack unwinder's pipe), and the program's calls that would take
 * them. Daemons close every descriptor they did not open (closefrom,
 * close_range, a loop of close) and then drop their privileges: varnishd
 * does. The trace was gone, it could not be opened again by its name
 * (root's, mode 0600), and libspy said so on the program's stderr, which
 * varnishd shows as its own output. So, as valgrind does with its own,
 * the program's closes leave libspy's descriptors open and tell the
 * program what the kernel would have told it without libspy, where no
 * such number was open. The hooks call in here.
 */
#ifndef SPY_OWNFD_H
#define SPY_OWNFD_H

#include <sys/types.h>

/* At most this many descriptors are known as libspy's at once. */
#define SPY_OWNFD_MAX 8

/* fd (spy_sys_fd_high's) is libspy's from now on, for as long as it is
 * open on the file it is open on now; no longer an end of the unwinder's
 * pipe, which the program closed before libspy took the number again. */
void spy_ownfd_taken(int fd);

/* 1 when fd is one of libspy's now (a few compares for any other number,
 * an fstat for one of libspy's). */
int spy_ownfd_is(int fd);

/* For the program's close of fd (close, or syscall(SYS_close)): 1 when
 * it must not reach the kernel, the number being libspy's, and the hook
 * returns -1 with EBADF instead. libspy's own calls (made with the guard
 * held, or by the unwinder: ret is the call's return address) go
 * through. A few compares for any other number; errno unchanged. */
int spy_ownfd_keep(int fd, const void *ret);

/* For the program's dup2 or dup3 of from onto to: when to is the trace's
 * descriptor (and from is open, so that the call will replace it), the
 * trace is given another number first, where the writer finds it
 * (spy_ownfd_on), and the program's call then goes ahead as without
 * libspy. The unwinder's pipe is left to its own checks
 * (spy_unwindpipe.h). errno unchanged. */
void spy_ownfd_make_way(int from, int to, const void *ret);

/* libspy's descriptors from first to last, in ascending order, in out;
 * returns how many. Call with the guard held (inside a hook). */
int spy_ownfd_within(unsigned first, unsigned last, int out[SPY_OWNFD_MAX]);

/* One of libspy's descriptors open on the file dev/ino, or -1. */
int spy_ownfd_on(dev_t dev, ino_t ino);

#endif
