/* livelock.c: two polite threads that keep stepping out of each other's way.
 *
 * Lesson: livelock. Each transfer needs both locks. Thread "left" takes lock
 * A and tries B; thread "right" takes B and tries A. Trying (trylock) never
 * blocks, so there is no deadlock: on failure each releases what it holds and
 * retries at once. But they are symmetric: both grab their first lock at the
 * same moment, both find the other lock taken, both let go, both retry...
 * The threads are busy (100% CPU) and make almost no progress.
 * Bug: retry immediately after a failed trylock, the same way in both threads.
 * libspy should report: livelock (two threads burning CPU on failing
 * trylocks with little or no progress, and the two locks they circle).
 * Run:  ./demos/livelock [SECONDS]       (gives up after SECONDS, default 1)
 *       LD_PRELOAD=./libspy.so ./demos/livelock
 *       spy ./demos/livelock
 * Output: the first line is fixed; the counts on the last line vary from run
 * to run. Real CPUs are not perfectly symmetric, so some attempts do get
 * through (a few percent, sometimes in streaks), and on a lucky run the
 * threads may even finish: a livelock is a collapse of progress, not
 * always a complete stop. The exit status is 0 either way.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define GOAL 1000                  /* transfers each thread must make */

static pthread_mutex_t lock_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock_b = PTHREAD_MUTEX_INITIALIZER;
static double give_up_at;
static pthread_barrier_t start_together;

struct worker {
	pthread_mutex_t *first, *second;
	unsigned long done, failed;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* About 20 microseconds of work between taking the first lock and trying the
 * second, as a real transfer would do (check the balance, write a log
 * entry): in that time the other thread takes its own first lock. */
static void prepare(void)
{
	double until = now() + 20e-6;

	while (now() < until)
		;
}

static void *transfer_loop(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(&start_together);
	while (w->done < GOAL && now() < give_up_at) {
		pthread_mutex_lock(w->first);
		prepare();
		if (pthread_mutex_trylock(w->second) == 0) {
			w->done++;                          /* got both: progress */
			pthread_mutex_unlock(w->second);
		} else {
			w->failed++;                        /* BUG: give up and */
		}                                           /* retry at once    */
		pthread_mutex_unlock(w->first);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1.0, t0 = now();
	struct worker left = { &lock_a, &lock_b, 0, 0 }, right = { &lock_b, &lock_a, 0, 0 };
	pthread_t l, r;

	give_up_at = t0 + seconds;
	pthread_barrier_init(&start_together, NULL, 2);
	pthread_create(&l, NULL, transfer_loop, &left);
	pthread_create(&r, NULL, transfer_loop, &right);
	pthread_join(l, NULL);
	pthread_join(r, NULL);
	printf("two threads, %d transfers each, each transfer needs lock_a and lock_b\n", GOAL);
	printf("after %.2f s: %lu of %d transfers done, %lu attempts failed%s\n", now() - t0,
	       left.done + right.done, 2 * GOAL, left.failed + right.failed,
	       left.done + right.done < 2 * GOAL ? " (gave up)" : "");
	return 0;
}
