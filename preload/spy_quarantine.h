/* spy_quarantine.h: freed blocks held back before the allocator gets them.
 * A block in quarantine is filled with a pattern; when it leaves (oldest
 * first, once its thread holds more than quarantine_mb) and at exit, the
 * pattern is checked, and a changed byte becomes a HEAP_UAF record: a
 * write through a dangling pointer. Each thread has its own quarantine:
 * no shared lock. Runs inside hooks with the guard held; never allocates.
 */
#ifndef SPY_QUARANTINE_H
#define SPY_QUARANTINE_H

#include <stddef.h>

/* The byte a quarantined block is filled with. */
#define SPY_QUARANTINE_FILL 0xfd

/* Takes the freed block p of size bytes (already marked freed in the map).
 * Returns 1 if it is held (the caller must not free it), 0 if the caller
 * must pass it to the real free now (quarantine off or block too big). */
int spy_quarantine_hold(void *p, size_t size);

/* The calling thread ends: its held blocks are checked and freed. */
void spy_quarantine_thread_exit(void);

/* Checks every held block of every thread (at exit; other threads may
 * still be running). */
void spy_quarantine_check_all(void);

#endif
