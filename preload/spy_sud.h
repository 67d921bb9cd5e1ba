/* spy_sud.h: syscalls=all: every system call of every thread, counted by
 * number, through Syscall User Dispatch (Linux 5.11 and later, x86-64).
 * An armed thread's system calls trap into a SIGSYS handler that counts
 * them and sends the thread through a stub that makes the call natively.
 * About 2.5 us a call on a VM: meant for audits, not the default.
 */
#ifndef SPY_SUD_H
#define SPY_SUD_H

/* Sets up the stub memory and the SIGSYS handler and arms the calling
 * thread. 0, or -1 when the kernel or the system refuses (a TRACE_NOTE
 * then says why, and nothing is armed). */
int spy_sud_init(void);

/* Arms the calling thread (a new thread, or the child after fork); does
 * nothing when syscalls=all is off or the thread is armed already. */
void spy_sud_arm_thread(void);

/* Writes the calling thread's counts (TRACE_SYSCALLS); at thread exit. */
void spy_sud_thread_exit(void);

/* Writes every thread's counts; at process exit. */
void spy_sud_flush_all(void);

/* In a fork child: forget the parent's counts, arm again. */
void spy_sud_after_fork_child(void);

/* 1 once spy_sud_init succeeded. */
extern int spy_sud_on;

#endif
