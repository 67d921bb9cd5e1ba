/* spy_unwindpipe.h: the stack unwinder's own pipe, kept out of the
 * program's way. libunwind tells whether an address is readable by writing
 * a byte from it into a pipe it opens at start-up, and opens the pipe again
 * when a read from it fails. Left alone, the pipe took the program's lowest
 * descriptor numbers (a program's first open() returned 5 instead of 3),
 * and after a program closed every descriptor it had not opened itself
 * (as daemons and shells do) and put files of its own on those numbers,
 * the unwinder read a byte from one of them, wrote a byte of memory into
 * another and closed both. So the pipe is moved to high numbers when it
 * is made, and the unwinder's calls on those numbers go through only while
 * they still name its pipe. The hooks call in here; nothing is recorded.
 */
#ifndef SPY_UNWINDPIPE_H
#define SPY_UNWINDPIPE_H

/* 1 when a read or write the unwinder makes on fd must fail with EBADF
 * instead: fd was its pipe's, and the program has it now. A compare or
 * two when fd is any other number. */
int spy_unwindpipe_stale(int fd);

/* A close of fd from the unwinder (ret: the call's return address; any
 * caller may come here). 1 when the close must not reach the kernel: the
 * number was the unwinder's pipe's, and the program has it now. */
int spy_unwindpipe_close(int fd, const void *ret);

/* fd is libspy's own from now on (spy_sys_fd_high, through
 * spy_ownfd_taken): no longer an end of the unwinder's pipe, which the
 * program closed before libspy took the number again. */
void spy_unwindpipe_disown(int fd);

/* 1 when fd is one end of the unwinder's pipe now. */
int spy_unwindpipe_owns(int fd);

#endif
