/* recursion_fixed.c: the fixed variant of recursion.c.
 *
 * Lesson: stack recursion. Two fixes: the recursion gets a base case and a
 * depth that is known to fit (1000 frames of ~300 bytes is 300 KB, well
 * within an 8 MiB stack), and the same work done by a loop that needs no
 * stack at all.
 * libspy should report: nothing (no stack-overflow).
 * Run:  ./demos/recursion_fixed
 *       LD_PRELOAD=./libspy.so ./demos/recursion_fixed
 */
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 1000

__attribute__((noinline)) static unsigned long count_down(unsigned long n, unsigned long limit)
{
	volatile char buf[256];

	if (n == limit)                     /* the base case */
		return 0;
	memset((char *)buf, (int)(n & 0x7f), sizeof buf);
	return count_down(n + 1, limit) + buf[n % sizeof buf];
}

static unsigned long count_iterative(unsigned long limit)
{
	unsigned long sum = 0;

	for (unsigned long n = 0; n < limit; n++)
		sum += n & 0x7f;
	return sum;
}

int main(void)
{
	printf("recursive, depth %d: %lu\n", MAX_DEPTH, count_down(0, MAX_DEPTH));
	printf("iterative, %d steps: %lu\n", MAX_DEPTH, count_iterative(MAX_DEPTH));
	printf("iterative, 100000000 steps (no stack needed): %lu\n", count_iterative(100000000));
	return 0;
}
