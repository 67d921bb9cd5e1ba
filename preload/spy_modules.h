/* spy_modules.h: the process's memory map, written to the trace so that
 * stacks can be symbolized offline (at start and after every dlopen).
 */
#ifndef SPY_MODULES_H
#define SPY_MODULES_H

#include <stdint.h>

/* Reads /proc/self/maps and writes one TRACE_MODULE record per line, as a
 * new snapshot. Also tells the stack capture where libspy's own code is.
 * Never allocates (the read buffer is mmap'd); on failure writes nothing. */
void spy_modules_snapshot(void);

/* Writes /proc/self/maps as TRACE_END_MAP records: the map as the
 * process ends. Async-signal-safe; on failure writes nothing. */
void spy_modules_end_map(void);

/* Both, from one reading of /proc/self/maps: at a normal exit. */
void spy_modules_at_exit(void);

/* Libraries may have been loaded: the next stack captured outside the
 * dynamic loader takes a new snapshot first. */
void spy_modules_mark_dirty(void);
extern int spy_modules_dirty;

/* 1 if one of frames[0..n) is in the dynamic loader: the stack was taken
 * inside dlopen, before the library is fully mapped. */
int spy_modules_in_loader(void *const *frames, int n);

/* The executable segment of the loaded module that holds probe, as
 * [*lo, *hi); 0 when probe is in none. */
int spy_modules_code_of(const void *probe, uintptr_t *lo, uintptr_t *hi);

/* Forgets the snapshot count (a forked child starts a new trace). */
void spy_modules_reset(void);

/* A fork child of a process with threads may have the loader's lock held
 * for good (a thread of the parent was in dlopen, dlclose or
 * dl_iterate_phdr at the fork), and glibc's dl_iterate_phdr would wait for
 * it forever. From the fork (spy_modules_fork_child) until the child
 * starts a thread (spy_modules_threads_started), dl_iterate_phdr called
 * by libspy, and by libunwind for it, reads the loader's list of modules
 * without the lock: with one thread, nothing changes it meanwhile. The
 * program's own calls always go to glibc. */
void spy_modules_fork_child(void);
void spy_modules_threads_started(void);

/* > 0 while the calling thread is inside dl_iterate_phdr, which holds the
 * loader's lock while it calls back: an allocation the callback makes
 * must not be unwound with libunwind, which takes a lock of its own and
 * then asks for the loader's (another thread doing the reverse deadlocked
 * gdb under libspy). */
extern __thread int spy_in_loader_walk
	__attribute__((tls_model("initial-exec")));

#endif
