/* spy_canary.c: the pattern in a block's slack (spy_canary.h).
 *
 * A short slack (1 to 8 bytes): FILL, then a last byte MARK | its length.
 * A longer one: FILL from the asked size on (at most FILL_MAX bytes of
 * it), and in the last 8 bytes the asked size (40 bits), a 16-bit hash of
 * it (so that a changed byte cannot make another asked size that fits)
 * and TAG in the top byte.
 * Either way the check finds what to compare from the block's end alone;
 * an overrun long enough to reach the end changes the mark or the tag. */
#include "spy_canary.h"

#include <stdint.h>
#include <string.h>

#define FILL 0xac
#define MARK 0xc0
#define TAG ((uint64_t)0xa5 << 56)
#define FILL_MAX 256
#define ASKED_BITS 40 /* as spy_canary_room allows */

static uint64_t tail_of(uint64_t asked)
{
	uint64_t hash = (asked * 0x9e3779b97f4a7c15ull) >> 48;
	return asked | hash << ASKED_BITS | TAG;
}

#define FILL8 0xacacacacacacacacull

/* Slacks are a few bytes: stores and loads of 8, no call (the compiler
 * would make the loop a call to memset). */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static void fill(uint8_t *q, uint8_t *stop)
{
	const uint64_t f = FILL8;
	for (; stop - q >= 8; q += 8)
		memcpy(q, &f, 8);
	for (; q < stop; q++)
		*q = FILL;
}

static int filled(const uint8_t *q, const uint8_t *stop)
{
	for (; stop - q >= 8; q += 8) {
		uint64_t v;
		memcpy(&v, q, 8);
		if (v != FILL8)
			return 0;
	}
	for (; q < stop; q++)
		if (*q != FILL)
			return 0;
	return 1;
}

static size_t fill_end(size_t asked, size_t usable)
{
	size_t end = usable - 8;
	return end - asked > FILL_MAX ? asked + FILL_MAX : end;
}

void spy_canary_set(void *p, size_t asked, size_t usable)
{
	uint8_t *b = p;
	size_t n = usable - asked;
	if (n <= 8) {
		fill(b + asked, b + usable - 1);
		b[usable - 1] = (uint8_t)(MARK | n);
		return;
	}
	fill(b + asked, b + fill_end(asked, usable));
	uint64_t tail = tail_of(asked);
	memcpy(b + usable - 8, &tail, 8);
}

int spy_canary_intact(const void *p, size_t usable)
{
	const uint8_t *b = p;
	if (!usable)
		return 0;
	unsigned last = b[usable - 1];
	if ((last & 0xf0) == MARK) {
		unsigned n = last & 15;
		return n >= 1 && n <= 8 && n <= usable &&
		       filled(b + usable - n, b + usable - 1);
	}
	if (usable < 9)
		return 0;
	uint64_t tail;
	memcpy(&tail, b + usable - 8, 8);
	size_t asked = (size_t)(tail & (((uint64_t)1 << ASKED_BITS) - 1));
	if (tail != tail_of(asked) || asked > usable - 9)
		return 0;
	return filled(b + asked, b + fill_end(asked, usable));
}
