/* spy_deepbind.h: libraries loaded with RTLD_DEEPBIND (php loads every
 * extension so) look each symbol up in their own dependencies before the
 * global scope: their malloc-family calls go straight to the C library,
 * past libspy's hooks. A block that crosses between such a library and
 * the rest of the program then reaches an allocator that did not hand it
 * out: in guard mode glibc's free of a guarded block aborts the program,
 * and in the default mode glibc reuses blocks libspy still holds as live
 * (their canaries and fill then read as damage). After such a dlopen,
 * libspy binds those calls to its hooks, as the loader binds every other
 * object's. The library's constructors run inside dlopen, before that.
 */
#ifndef SPY_DEEPBIND_H
#define SPY_DEEPBIND_H

/* 1 when the real dlopen may be called from libspy instead of from ret
 * (the caller's return address) without finding another file: path names
 * a file (a '/', no '$' to expand), or the caller has no RPATH or RUNPATH
 * of its own to search. */
int spy_deepbind_may_open(const char *path, const void *ret);

/* The real dlopen, then the malloc-family calls of every object that the
 * C library's functions serve in libspy's place bound to libspy's hooks. */
void *spy_deepbind_open(const char *path, int flags);

#endif
