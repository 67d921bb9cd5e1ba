/* array_decay.c: an array is not a pointer, until you pass it to a function.
 *
 * Lesson: arrays and pointer decay. `sizeof scores` is the whole array in the
 * scope that declares it; passed to a function, the array "decays" to a
 * pointer to its first element, and sizeof gives the size of a pointer.
 * Bug: average_wrong() computes the element count with sizeof inside the
 * function and so only looks at the first 2 elements (8 bytes / 4).
 * libspy: no finding expected; the printed addresses can be placed on the
 * process map with `analyze where ADDR` (the array is on main's stack, the
 * copy made by malloc on the heap, the table is in .data).
 * Run:  ./demos/array_decay
 *       LD_PRELOAD=./libspy.so ./demos/array_decay
 * Output: the sizes and averages are deterministic; addresses are not (ASLR).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int table[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

/* gcc warns about exactly this mistake (-Wsizeof-array-argument); the demo
 * makes it on purpose, so the warning is silenced here. */
#pragma GCC diagnostic ignored "-Wsizeof-array-argument"

/* The parameter looks like an array but is an `int *`: [] here is decoration. */
static double average_wrong(int scores[10])
{
	size_t n = sizeof(scores) / sizeof(scores[0]);  /* pointer size / int size */
	double sum = 0;

	printf("  inside average_wrong: sizeof(scores) = %zu (a pointer), n = %zu\n",
	       sizeof(scores), n);
	for (size_t i = 0; i < n; i++)
		sum += scores[i];
	return sum / n;
}

/* The fix: pass the length along with the pointer. */
static double average(const int *scores, size_t n)
{
	double sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += scores[i];
	return sum / n;
}

int main(void)
{
	int scores[10] = { 90, 80, 70, 60, 50, 40, 30, 20, 10, 0 };
	size_t n = sizeof scores / sizeof scores[0];
	int *copy = malloc(sizeof scores);

	if (!copy)
		return 1;
	memcpy(copy, scores, sizeof scores);
	printf("in main: sizeof(scores) = %zu (the whole array), n = %zu\n", sizeof scores, n);
	printf("in main: sizeof(copy) = %zu (a pointer to %zu heap bytes)\n", sizeof copy, sizeof scores);
	printf("average_wrong(scores) = %.1f\n", average_wrong(scores));
	printf("average(scores, n)    = %.1f\n", average(scores, n));
	printf("addresses (they change from run to run):\n");
	printf("  scores     %p  (stack: an array in main's frame)\n", (void *)scores);
	printf("  &scores[1] %p  (one int = %zu bytes further)\n", (void *)&scores[1], sizeof(int));
	printf("  &scores    %p  (same address, different type: int (*)[10])\n", (void *)&scores);
	printf("  copy       %p  (heap)\n", (void *)copy);
	printf("  table      %p  (global array: .data)\n", (void *)table);
	free(copy);
	return 0;
}
