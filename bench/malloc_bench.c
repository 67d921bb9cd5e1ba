/* malloc_bench.c: a malloc-heavy workload to measure what tracing costs.
 *
 * Usage: malloc_bench THREADS [ITERATIONS]   (default 1 thread, 2000000)
 * ITERATIONS is the total, split evenly across the threads. Each iteration
 * picks a random slot out of 1024 (per thread), frees what is there, mallocs
 * 16..4096 bytes (xorshift) into it and touches the first and last byte.
 * Every 100th iteration also mallocs a block that stays live until exit.
 * At the end it prints how many malloc and free calls it made (free(NULL)
 * not counted), so that run.sh can compute trace bytes per event.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define SLOTS 1024

struct worker {
	unsigned long iterations, seed;
	unsigned long mallocs, frees;
	pthread_t tid;
};

static unsigned long xorshift(unsigned long *s)
{
	unsigned long x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	char **slot = calloc(SLOTS, sizeof *slot);
	char **kept = calloc(w->iterations / 100 + 1, sizeof *kept);
	unsigned long nkept = 0;

	if (!slot || !kept) {
		perror("calloc");
		exit(1);
	}
	w->mallocs += 2;
	for (unsigned long i = 0; i < w->iterations; i++) {
		unsigned long r = xorshift(&w->seed);
		unsigned long k = r % SLOTS;
		size_t size = 16 + (r >> 12) % (4096 - 16 + 1);

		if (slot[k]) {
			free(slot[k]);
			w->frees++;
		}
		slot[k] = malloc(size);
		w->mallocs++;
		if (!slot[k]) {
			perror("malloc");
			exit(1);
		}
		slot[k][0] = 1;
		slot[k][size - 1] = 1;
		if (i % 100 == 0) {
			kept[nkept] = malloc(size);
			w->mallocs++;
			if (!kept[nkept]) {
				perror("malloc");
				exit(1);
			}
			kept[nkept++][0] = 1;
		}
	}
	return NULL;    /* slot and kept blocks stay live until exit */
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 1;
	unsigned long total = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000000;
	struct worker *w;
	unsigned long mallocs = 0, frees = 0;

	if (threads < 1 || threads > 256 || total < 1) {
		fprintf(stderr, "usage: %s THREADS [ITERATIONS]\n", argv[0]);
		return 2;
	}
	w = calloc(threads, sizeof *w);
	if (!w)
		return 1;
	for (int t = 0; t < threads; t++) {
		w[t].iterations = total / threads;
		w[t].seed = 88172645463325252UL + 7919UL * t;
		if (pthread_create(&w[t].tid, NULL, run, &w[t]) != 0) {
			perror("pthread_create");
			return 1;
		}
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(w[t].tid, NULL);
		mallocs += w[t].mallocs;
		frees += w[t].frees;
	}
	printf("threads %d iterations %lu mallocs %lu frees %lu\n",
	       threads, (total / threads) * threads, mallocs + 1, frees);
	return 0;
}
