/* spy_canary.h: the bytes an allocator hands out past what was asked for
 * (glibc rounds a request up to 8 more than a multiple of 16: up to 24
 * bytes) are where a small overrun lands first, say the '\0' that strcpy
 * writes one byte past a malloc(strlen(s)). libspy fills them with a
 * pattern and checks it when the block is freed or reallocated and at
 * exit. Any block of the malloc family or of C++ new and new[], but never
 * one whose usable size the program asked for (it may then use all of
 * it).
 */
#ifndef SPY_CANARY_H
#define SPY_CANARY_H

#include <stddef.h>

/* The last bytes of a block a record of a changed canary shows: all of
 * glibc's slack (at most 24 bytes) and more. */
#define SPY_CANARY_SHOWN 64

/* 1 if a block of usable bytes asked for as asked has room for one. */
static inline int spy_canary_room(size_t asked, size_t usable)
{
	return usable > asked && !(asked >> 40); /* TRACE_CANARY_ASKED_BITS */
}

/* Fills the bytes past asked in the block at p of usable bytes (which
 * must have room for it). */
void spy_canary_set(void *p, size_t asked, size_t usable);

/* 1 while the canary of the block at p (usable bytes) is as it was set. */
int spy_canary_intact(const void *p, size_t usable);

#endif
