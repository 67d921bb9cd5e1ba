/* heap_live.c: the heap checks' own workload. Allocates N blocks of SIZE
 * bytes (default 1,000,000 of 1024: about 1 GiB), each pointing to the
 * next, keeps the first in a global, frees nothing and exits: the leak
 * scan at exit must follow the whole chain (every block still reachable).
 * Prints the RSS before exit, so that the memory libspy adds per live block
 * can be compared with a plain run.
 * Usage: heap_live [N [SIZE]]
 */
#include <stdio.h>
#include <stdlib.h>

void **volatile head; /* a root: the whole chain is reachable from it */

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	long size = argc > 2 ? atol(argv[2]) : 1024;
	void **prev = NULL;
	for (long i = 0; i < n; i++) {
		void **b = malloc((size_t)size);
		if (!b)
			return 1;
		b[0] = NULL;
		b[1] = (void *)i;
		if (prev)
			prev[0] = b;
		else
			head = b;
		prev = b;
	}
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	if (f)
		fclose(f);
	printf("blocks %ld size %ld rss_kb %ld\n", n, size, rss * 4);
	return 0;
}
