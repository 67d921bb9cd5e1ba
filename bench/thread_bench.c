/* thread_bench.c: the cost of a thread's life: create, run nothing, exit,
 * join, N times, one or B at a time; and, with "spin", two threads that
 * write counters for S seconds of CPU (the workload for the cost of
 * sampling).
 *
 * Usage: thread_bench life N [BATCH]   -> "life N ns_per_thread CPU_ns_per_thread"
 *        thread_bench lifem N [BATCH]  -> the same, each thread mallocs and frees once
 *        thread_bench spin MILLIONS    -> "spin M wall_s cpu_s"
 * Times are measured by the program itself (CLOCK_MONOTONIC around the
 * loop, getrusage for CPU), so that process start and exit stay out.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void *nothing(void *arg)
{
	return arg;
}

/* The same with one malloc and free: a thread any recorder sees. */
static void *allocates(void *arg)
{
	free(malloc(16));
	return arg;
}

struct counter {
	_Alignas(64) volatile unsigned long n;
};
static struct counter counters[2];
static unsigned long spins;

static void *spin(void *arg)
{
	struct counter *c = arg;
	for (unsigned long i = 0; i < spins; i++)
		c->n++;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: thread_bench life|lifem N [BATCH] | spin MILLIONS\n");
		return 2;
	}
	if (!strcmp(argv[1], "spin")) {
		spins = strtoul(argv[2], NULL, 10) * 1000000ul;
		pthread_t t[2];
		double w0 = now(), c0 = cpu();
		for (int i = 0; i < 2; i++)
			pthread_create(&t[i], NULL, spin, &counters[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		printf("spin %s %.4f %.4f\n", argv[2], now() - w0, cpu() - c0);
		return 0;
	}
	void *(*body)(void *) = !strcmp(argv[1], "lifem") ? allocates : nothing;
	unsigned long n = strtoul(argv[2], NULL, 10);
	unsigned long batch = argc > 3 ? strtoul(argv[3], NULL, 10) : 1;
	if (!n || !batch || batch > 1024)
		return 2;
	pthread_t t[1024];
	double w0 = now(), c0 = cpu();
	for (unsigned long done = 0; done < n; done += batch) {
		for (unsigned long i = 0; i < batch; i++)
			if (pthread_create(&t[i], NULL, body, NULL) != 0)
				return 1;
		for (unsigned long i = 0; i < batch; i++)
			pthread_join(t[i], NULL);
	}
	double w = now() - w0, c = cpu() - c0;
	printf("%s %lu %.0f %.0f\n", argv[1], n, w / (double)n * 1e9, c / (double)n * 1e9);
	return 0;
}
