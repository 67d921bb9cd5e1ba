/* lock_bench.c: uncontended and contended mutex lock/unlock pairs.
 *
 * Usage: lock_bench MODE PAIRS
 *   MODE sep:    2 threads, each locks and unlocks its own mutex PAIRS times
 *   MODE shared: 2 threads, both lock and unlock one mutex PAIRS times each
 *   MODE one:    1 thread, its own mutex (the cost of a pair alone, with no
 *                cache line shared between threads)
 * Prints "mode M threads T pairs N loop_s S ns_per_pair P": the loop's wall
 * time (from the moment both threads start together to the last one done)
 * and the wall nanoseconds per pair of one thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long pairs;
static pthread_mutex_t shared = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t go;
static volatile long sink;

struct worker {
	pthread_mutex_t own;
	pthread_mutex_t *m;
	char pad[64];
};

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void *loop(void *arg)
{
	struct worker *w = arg;
	pthread_barrier_wait(&go);
	for (long i = 0; i < pairs; i++) {
		pthread_mutex_lock(w->m);
		sink++;
		pthread_mutex_unlock(w->m);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "sep") && strcmp(argv[1], "shared") &&
			  strcmp(argv[1], "one"))) {
		fprintf(stderr, "usage: lock_bench sep|shared|one PAIRS\n");
		return 2;
	}
	int sep = strcmp(argv[1], "shared") != 0;
	int n = strcmp(argv[1], "one") ? 2 : 1;
	pairs = atol(argv[2]);
	static struct worker w[2];
	pthread_t t[2];
	pthread_barrier_init(&go, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++) {
		pthread_mutex_init(&w[i].own, NULL);
		w[i].m = sep ? &w[i].own : &shared;
		pthread_create(&t[i], NULL, loop, &w[i]);
	}
	double t0 = now();
	pthread_barrier_wait(&go);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	double s = now() - t0;
	printf("mode %s threads %d pairs %ld loop_s %.4f ns_per_pair %.1f\n",
	       argv[1], n, pairs, s, s * 1e9 / (double)pairs);
	return 0;
}
