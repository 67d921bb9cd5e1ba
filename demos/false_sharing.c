/* false_sharing.c: two threads, two counters, one cache line.
 *
 * Lesson: false sharing. The CPU caches memory in 64-byte lines. The two
 * counters below are different variables, but they sit in the same line, so
 * every increment by one thread invalidates the line in the other core's
 * cache: the line ping-pongs between cores and both threads run slowly,
 * although they never touch each other's data.
 * Bug: `struct counters` packs `hits` and `misses` next to each other.
 * libspy should report: false-sharing, naming the two threads, the 64-byte
 * line they both write, the fields involved (hits at +0, misses at +8), and
 * the slowdown measured against false_sharing_fixed.
 * Run:  ./demos/false_sharing [ITERATIONS]      (default 50000000 per thread)
 *       LD_PRELOAD=./libspy.so ./demos/false_sharing
 *       spy ./demos/false_sharing
 * Output: the totals are deterministic; then the elapsed time, and how long
 * the two threads really ran at the same time: a line only ping-pongs
 * between cores while both run, so when they hardly overlapped (a busy or
 * small machine) the last line says the timing is inconclusive.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct counters {
	_Atomic unsigned long hits;     /* bytes 0..7  */
	_Atomic unsigned long misses;   /* bytes 8..15: same 64-byte line as hits */
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
