/* false_sharing_fixed.c: the fixed variant of false_sharing.c.
 *
 * Lesson: false sharing. Each counter gets a 64-byte cache line of its own
 * (alignas(64)), so the two cores never fight over a line and each keeps its
 * counter in its own cache. Compare the elapsed time with false_sharing.
 * libspy should report: nothing (no false-sharing).
 * Run:  ./demos/false_sharing_fixed [ITERATIONS]  (default 50000000 per thread)
 *       LD_PRELOAD=./libspy.so ./demos/false_sharing_fixed
 *       spy ./demos/false_sharing_fixed
 * Output: the totals are deterministic; then the elapsed time, and how long
 * the two threads really ran at the same time: a line only ping-pongs
 * between cores while both run, so when they hardly overlapped (a busy or
 * small machine) the last line says the timing is inconclusive.
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct counters {
	alignas(64) _Atomic unsigned long hits;     /* bytes 0..7,  line 0 */
	alignas(64) _Atomic unsigned long misses;   /* bytes 64..71, line 1 */
};

static struct counters stats;
static unsigned long iterations = 50000000;

static double cpu_hits, cpu_misses;   /* each thread's own CPU time, s */

static double thread_cpu(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void *count_hits(void *arg)
{
	(void)arg;
	for (unsigned long i = 0; i < iterations; i++)
		atomic_fetch_add_explicit(&stats.hits, 1, memory_order_relaxed);
	cpu_hits = thread_cpu();
	return NULL;
}

static void *count_misses(void *arg)
{
	(void)arg;
	for (unsigned long i = 0; i < iterations; i++)
		atomic_fetch_add_explicit(&stats.misses, 1, memory_order_relaxed);
	cpu_misses = thread_cpu();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t a, b;
	struct timespec t0, t1;

	if (argc > 1)
		iterations = strtoul(argv[1], NULL, 10);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&a, NULL, count_hits, NULL);
	pthread_create(&b, NULL, count_misses, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("hits = %lu, misses = %lu\n", (unsigned long)stats.hits, (unsigned long)stats.misses);
	printf("&stats.hits = %p, &stats.misses = %p: %s 64-byte line\n",
	       (void *)&stats.hits, (void *)&stats.misses,
	       ((unsigned long)&stats.hits >> 6) == ((unsigned long)&stats.misses >> 6) ?
	       "the same" : "not the same");
	double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* Both on a CPU at once for (cpu_hits + cpu_misses - wall) of the
	 * wall time, at least (two threads, nothing else of ours running). */
	double together = wall > 0 ? (cpu_hits + cpu_misses - wall) / wall : 0;

	if (together < 0)
		together = 0;
	if (together > 1)
		together = 1;
	printf("elapsed %.3f s\n", wall);
	printf("the threads used %.3f s and %.3f s of CPU and ran at the same time for about %.0f%% of the elapsed time\n",
	       cpu_hits, cpu_misses, together * 100);
	if (together < 0.5)
		printf("inconclusive: the two threads mostly took turns, so this run cannot show what sharing a line costs\n");
	else
		printf("compare the elapsed time with the other variant's, run the same way\n");
	return 0;
}
