/* scheduling_tax.c: one thread per request, 2000 requests.
 *
 * Lesson: the scheduling tax. Each request waits a little (here: sleeps 0-9
 * ms, standing in for a slow disk or network) and then does a tiny amount of
 * work. Giving every request its own thread looks simple, but each thread
 * costs a clone(2), a stack (8 MiB of address space reserved by default),
 * scheduler bookkeeping, and context switches to wake it, to let it take
 * the lock, to let it exit; the useful work is a few additions.
 * Bug: a thread per request (2000 threads) for work that needs one.
 * libspy should report: thread-storm (threads created, how many were alive
 * at once, voluntary/involuntary context switches, run-queue delay, stack
 * memory reserved).
 * Run:  ./demos/scheduling_tax [REQUESTS]          (default 2000)
 *       LD_PRELOAD=./libspy.so ./demos/scheduling_tax
 *       spy ./demos/scheduling_tax
 * Output: the totals are deterministic; the time and the context switches are
 * the lesson, printed on the last lines (they vary from run to run).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static pthread_mutex_t total_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long total, handled;

/* The useful work of one request: a few additions. */
static unsigned long work(unsigned long id)
{
	unsigned long sum = 0;

	for (unsigned long n = id; n > 0; n /= 10)
		sum += n % 10;
	return sum;
}

static void *handle_request(void *arg)
{
	unsigned long id = (unsigned long)arg;
	struct timespec wait = { 0, (long)(id % 10) * 1000000 };   /* 0-9 ms */
	unsigned long result;

	nanosleep(&wait, NULL);                 /* waiting for "I/O" */
	result = work(id);
	pthread_mutex_lock(&total_lock);
	total += result;
	handled++;
	pthread_mutex_unlock(&total_lock);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long requests = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
	pthread_t *threads = calloc(requests, sizeof *threads);
	struct timespec t0, t1;
	struct rusage ru;

	if (!threads)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned long i = 0; i < requests; i++)
		if (pthread_create(&threads[i], NULL, handle_request, (void *)i) != 0) {
			fprintf(stderr, "scheduling_tax: pthread_create failed at request %lu\n", i);
			return 1;
		}
	for (unsigned long i = 0; i < requests; i++)
		pthread_join(threads[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	printf("%lu requests handled by %lu threads, checksum %lu\n", handled, requests, total);
	printf("elapsed %.3f s, context switches: %ld voluntary, %ld involuntary\n",
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, ru.ru_nvcsw, ru.ru_nivcsw);
	free(threads);
	return 0;
}
