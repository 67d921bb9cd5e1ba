/* recursion.c: recursion without a base case overflows the stack.
 *
 * Lesson: stack recursion. Each call pushes a frame (return address, saved
 * registers, locals). The main thread's stack is limited (`ulimit -s`,
 * usually 8 MiB); when the frames reach the guard page below it, the kernel
 * sends SIGSEGV and the shell prints a bare "Segmentation fault".
 * Bug: count_down() has no base case, and each frame holds a 256-byte local
 * array, so about 8 MiB / ~300 B = ~28000 calls fill the stack.
 * libspy should report: stack-overflow, with the frame count, the
 * approximate frame size, the stack limit and the repeating frame
 * (count_down). The exit status stays "killed by SIGSEGV".
 * Run:  ./demos/recursion            (dies of SIGSEGV, status 139 in a shell)
 *       LD_PRELOAD=./libspy.so ./demos/recursion
 *       spy ./demos/recursion
 */
#include <stdio.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Winfinite-recursion"  /* the bug, on purpose */

static unsigned long deepest;

/* noinline and the use of buf keep the compiler from turning this into a loop. */
__attribute__((noinline)) static unsigned long count_down(unsigned long n)
{
	volatile char buf[256];

	memset((char *)buf, (int)(n & 0x7f), sizeof buf);
	deepest = n;
	return count_down(n + 1) + buf[n % sizeof buf];  /* BUG: no base case */
}

int main(void)
{
	printf("recursing without a base case; this ends with SIGSEGV\n");
	fflush(stdout);
	return (int)count_down(0);
}
