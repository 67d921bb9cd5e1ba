/* spy_qprotect.h: the inner pages of a big block held in quarantine are
 * made inaccessible, so that a read or write through a dangling pointer
 * into the middle of it (where the fill pattern does not reach) is caught
 * at the very instruction. The fault is recorded (a GUARD_FAULT record,
 * what = read or write in quarantine), the pages are made accessible
 * again, and the access is retried: the program goes on as it would have.
 *
 * At most SPY_QPROTECT_MAX blocks at once, across all threads (each
 * splits a mapping in three: the kernel's limit on mappings is shared
 * with the program), and at most 100 in 100 ms (spy_qprotect.c). Only
 * while libspy's own SIGSEGV handler is in place.
 * Runs inside hooks and signal handlers: mprotect, no allocation.
 */
#ifndef SPY_QPROTECT_H
#define SPY_QPROTECT_H

#include <stddef.h>
#include <stdint.h>

#define SPY_QPROTECT_MAX 1024

/* Registers the fault resolver; called once at start, after the signal
 * handlers are in place. */
void spy_qprotect_init(void);

/* Makes the whole pages of [block + *head, block + size - *tail) of a
 * held block inaccessible when the block is big enough
 * (quarantine_protect); *head and *tail then become the bytes left
 * accessible at each end. Returns a handle for spy_qprotect_release, or 0
 * when nothing was done (*head and *tail unchanged). */
int spy_qprotect_hold(uintptr_t block, size_t size, size_t *head, size_t *tail);

/* A system call failed with EFAULT on [buf, buf + len): the inaccessible
 * pages of held blocks in that range are made accessible again, and each
 * block's first such access recorded (the kernel wrote into the buffer
 * when `into`, else read it; ret is the call's return address). Returns
 * how many blocks were lifted: the call is worth making again. Inside a
 * hook, the guard held. */
int spy_qprotect_lift(const void *buf, size_t len, int into, uintptr_t ret);
/* The same for each buffer of a vector call's iovec array, or of a
 * msghdr's; the program's array is read armed against a fault. */
struct iovec;
struct msghdr;
int spy_qprotect_lift_vec(const struct iovec *iov, int cnt, int into,
			  uintptr_t ret);
int spy_qprotect_lift_msg(const struct msghdr *msg, int into, uintptr_t ret);

/* The block leaves the quarantine: its pages are accessible again. */
void spy_qprotect_release(int handle);

/* At exit: no more blocks are protected, and every protected one is made
 * accessible (the checks and the leak scan read them). */
void spy_qprotect_end(void);

#endif
