/* scheduling_tax_fixed.c: the fixed variant of scheduling_tax.c.
 *
 * Lesson: the scheduling tax. The same 2000 requests (each waits 0-9 ms, then
 * does a few additions) are served by ONE thread running an event loop: it
 * sleeps in poll(2) until the earliest pending request is ready, then handles
 * every request that is ready, and repeats. About ten wake-ups instead of thousands
 * of threads; no locks, since only one thread touches the totals.
 * libspy should report: nothing (no thread-storm).
 * Run:  ./demos/scheduling_tax_fixed [REQUESTS]    (default 2000)
 *       LD_PRELOAD=./libspy.so ./demos/scheduling_tax_fixed
 *       spy ./demos/scheduling_tax_fixed
 * Output: the totals are deterministic; the time and the context switches are
 * printed on the last line.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static unsigned long work(unsigned long id)
{
	unsigned long sum = 0;

	for (unsigned long n = id; n > 0; n /= 10)
		sum += n % 10;
	return sum;
}

int main(int argc, char **argv)
{
	unsigned long requests = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
	unsigned long total = 0, handled = 0, wakeups = 0;
	double start = now_ms(), *ready_at = malloc(requests * sizeof *ready_at);
	char *done = calloc(requests, 1);
	struct rusage ru;

	if (!ready_at || !done)
		return 1;
	for (unsigned long i = 0; i < requests; i++)
		ready_at[i] = start + (double)(i % 10);       /* same waits: 0-9 ms */
	while (handled < requests) {
		double t = now_ms(), next = -1;

		/* Handle everything that is ready, note the earliest pending one. */
		for (unsigned long i = 0; i < requests; i++) {
			if (done[i])
				continue;
			if (ready_at[i] <= t) {
				total += work(i);
				done[i] = 1;
				handled++;
			} else if (next < 0 || ready_at[i] < next) {
				next = ready_at[i];
			}
		}
		if (next >= 0) {                            /* sleep until then */
			poll(NULL, 0, (int)(next - t) + 1);
			wakeups++;
		}
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("%lu requests handled by 1 thread, checksum %lu\n", handled, total);
	printf("elapsed %.3f s, %lu wake-ups, context switches: %ld voluntary, %ld involuntary\n",
	       (now_ms() - start) / 1e3, wakeups, ru.ru_nvcsw, ru.ru_nivcsw);
	free(ready_at);
	free(done);
	return 0;
}
