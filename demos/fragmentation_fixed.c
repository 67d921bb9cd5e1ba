/* fragmentation_fixed.c: the fixed variant of fragmentation.c.
 *
 * Lesson: heap fragmentation. The long-lived records now come from a pool: one
 * array of same-size slots with a free list, so they no longer sit between
 * the temporary buffers. When the temporaries are freed they merge into one
 * free region at the top of the heap, glibc gives it back to the kernel, and
 * the 24 MB request fits under the same address-space limit (RLIMIT_AS = what
 * the demo uses at start + 48 MB, which the demo sets and says it sets).
 * In a pool every hole is exactly the size of the next request, so a hole is
 * always reusable: same-size blocks cannot fragment.
 * libspy should report: nothing (no fragmentation, no allocation-failure).
 * Run:  ./demos/fragmentation_fixed
 *       LD_PRELOAD=./libspy.so ./demos/fragmentation_fixed
 *       spy ./demos/fragmentation_fixed
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

/* A pool of same-size slots; a free slot holds the index of the next one. */
union slot {
	char data[REC_SIZE];
	int next_free;
};
static union slot *pool;
static int pool_free = -1;

static int pool_init(int n)
{
	pool = malloc(n * sizeof *pool);       /* one block for all records */
	if (!pool)
		return -1;
	for (int i = 0; i < n; i++)
		pool[i].next_free = i + 1 < n ? i + 1 : -1;
	pool_free = 0;
	return 0;
}

static char *pool_get(void)
{
	union slot *s;

	if (pool_free < 0)
		return NULL;
	s = &pool[pool_free];
	pool_free = s->next_free;
	return s->data;
}

static void pool_put(char *p)
{
	union slot *s = (union slot *)p;

	s->next_free = pool_free;
	pool_free = (int)(s - pool);
}

static char *tmp[COUNT], *rec[COUNT];

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
	       BUDGET >> 20, "");

	printf("building %d records from a pool, each next to a %d-byte temporary buffer\n",
	       COUNT, TMP_SIZE);
	if (pool_init(COUNT) != 0)
		return 1;
	for (int i = 0; i < COUNT; i++) {
		tmp[i] = malloc(TMP_SIZE);             /* short-lived, heap */
		rec[i] = pool_get();                   /* long-lived, pool */
		if (!tmp[i] || !rec[i])
			return 1;
		tmp[i][0] = rec[i][0] = 1;
	}
	heap_summary("after building:");
	for (int i = 0; i < COUNT; i++)
		free(tmp[i]);                          /* they merge into one region */
	heap_summary("after freeing tmps:");

	big = malloc(BIG);
	if (!big) {
		printf("malloc(%lu MB) failed\n", BIG >> 20);
		return 1;
	}
	printf("malloc(%lu MB) succeeded\n", BIG >> 20);
	free(big);
	for (int i = 0; i < COUNT; i++)
		pool_put(rec[i]);
	free(pool);
	return 0;
}
