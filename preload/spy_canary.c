/* spy_canary.c: the pattern in a block's slack (spy_canary.h), as
 * trace_format.h lays it out for the analyzer too: the check finds what to
 * compare from the block's end alone; an overrun long enough to reach the
 * end changes the mark or the tail. */
#include "spy_canary.h"

#include <stdint.h>
#include <string.h>

#include "trace_format.h"

#define FILL TRACE_CANARY_FILL
#define MARK TRACE_CANARY_MARK
#define FILL8 (TRACE_CANARY_FILL * 0x0101010101010101ull)

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
	return end - asked > TRACE_CANARY_FILL_MAX
		? asked + TRACE_CANARY_FILL_MAX : end;
}

void spy_canary_set(void *p, size_t asked, size_t usable)
{
	uint8_t *b = p;
	size_t n = usable - asked;
	if (n <= TRACE_CANARY_SHORT) {
		fill(b + asked, b + usable - 1);
		b[usable - 1] = (uint8_t)(MARK | n);
		return;
	}
	fill(b + asked, b + fill_end(asked, usable));
	uint64_t tail = trace_canary_tail(asked);
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
		return n >= 1 && n <= TRACE_CANARY_SHORT && n <= usable &&
		       filled(b + usable - n, b + usable - 1);
	}
	if (usable < 9)
		return 0;
	uint64_t tail;
	memcpy(&tail, b + usable - 8, 8);
	size_t asked = (size_t)(tail & (((uint64_t)1 << TRACE_CANARY_ASKED_BITS) - 1));
	if (tail != trace_canary_tail(asked) || asked > usable - 9)
		return 0;
	return filled(b + asked, b + fill_end(asked, usable));
}
