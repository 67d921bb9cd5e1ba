/* fragmentation.c: 32 MB free in the heap, and a 24 MB malloc still fails.
 *
 * Lesson: heap fragmentation. A program builds records (small, kept) while
 * using big temporary buffers (4000 bytes, freed soon after). The heap ends
 * up as tmp rec tmp rec ...; freeing every tmp (every other block) leaves
 * 8192 holes of 4 KB each, pinned apart by the records between them. The
 * free bytes add up to 32 MB, but no single hole can hold a big request.
 * What is really true on Linux today: on 64-bit glibc a big malloc is served
 * by mmap, from fresh address space, so it does NOT fail merely because the
 * brk heap is fragmented; the holes only waste memory. To show the failure
 * honestly, this demo limits its own address space with setrlimit(RLIMIT_AS)
 * to what it uses at start plus 48 MB, and says so. The 33 MB heap of
 * unusable holes counts against that budget, and the 24 MB request fails.
 * Bug: short-lived and long-lived blocks interleaved in one heap.
 * libspy should report: fragmentation (live vs free bytes, number and size of
 * holes, largest hole) and allocation-failure (malloc(24 MiB) returned NULL,
 * with the RLIMIT_AS in force); glibc malloc next to jemalloc.
 * Under jemalloc (LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2)
 * mallinfo2() prints zeros (it is glibc's), and the request fails in both
 * this and the fixed variant: jemalloc keeps address space it has mapped for
 * reuse instead of returning it, so it stays counted by RLIMIT_AS.
 * Run:  ./demos/fragmentation        (exits with status 1: the allocation fails)
 *       LD_PRELOAD=./libspy.so ./demos/fragmentation
 *       spy ./demos/fragmentation
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#define COUNT     8192
#define TMP_SIZE  4000
#define REC_SIZE  32
#define BIG       (24UL << 20)
#define BUDGET    (48UL << 20)   /* address space beyond what main starts with */

static char *tmp[COUNT], *rec[COUNT];

/* Address space in use now (VmSize), from /proc/self/statm, in bytes. */
static unsigned long address_space(void)
{
	unsigned long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return pages * 4096;
}

static void heap_summary(const char *when)
{
	struct mallinfo2 mi = mallinfo2();

	printf("%-22s in use %5.1f MB, free in holes %5.1f MB (%zu free chunks)\n",
	       when, mi.uordblks / 1e6, mi.fordblks / 1e6, mi.ordblks);
}

int main(void)
{
	struct rlimit lim;
	char *big;

	lim.rlim_cur = lim.rlim_max = address_space() + BUDGET;
	if (setrlimit(RLIMIT_AS, &lim) != 0) {
		perror("setrlimit");
		return 1;
	}
	printf("this demo limits its own address space (RLIMIT_AS) to what it uses at start + %lu MB%s\n",
	       BUDGET >> 20, ";\n"
	       "without a limit, glibc would serve the big request with mmap and it would work");

	printf("building %d records, each next to a %d-byte temporary buffer\n", COUNT, TMP_SIZE);
	for (int i = 0; i < COUNT; i++) {
		tmp[i] = malloc(TMP_SIZE);             /* short-lived */
		rec[i] = malloc(REC_SIZE);             /* long-lived, pins the hole */
		if (!tmp[i] || !rec[i])
			return 1;
		tmp[i][0] = rec[i][0] = 1;
	}
	heap_summary("after building:");
	for (int i = 0; i < COUNT; i++)
		free(tmp[i]);                          /* every other block */
	heap_summary("after freeing tmps:");

	big = malloc(BIG);
	if (!big) {
		printf("malloc(%lu MB) failed: the free memory is in holes of ~4 KB, none big enough\n",
		       BIG >> 20);
		return 1;
	}
	printf("malloc(%lu MB) succeeded\n", BIG >> 20);
	free(big);
	for (int i = 0; i < COUNT; i++)
		free(rec[i]);
	return 0;
}
