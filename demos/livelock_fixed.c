/* livelock_fixed.c: the fixed variant of livelock.c.
 *
 * Lesson: livelock. The same two threads, the same locks in the same orders,
 * the same trylock. The only change: after a failed attempt a thread waits a
 * RANDOM time before retrying, and doubles the range after each consecutive
 * failure (random exponential backoff, as Ethernet does after a collision).
 * Randomness breaks the symmetry: one thread retries while the other still
 * waits, gets both locks, and the pair stops colliding.
 * libspy should report: nothing (no livelock): failures are few, and each
 * is followed by a sleep, not by a busy retry.
 * Run:  ./demos/livelock_fixed [SECONDS]   (gives up after SECONDS, default 1)
 *       LD_PRELOAD=./libspy.so ./demos/livelock_fixed
 *       spy ./demos/livelock_fixed
 * Output: the first line is fixed; the counts on the last line vary.
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
	unsigned int seed;              /* for rand_r: each thread its own */
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
	int streak = 0;                                 /* failures in a row */

	pthread_barrier_wait(&start_together);
	while (w->done < GOAL && now() < give_up_at) {
		int ok;

		pthread_mutex_lock(w->first);
		prepare();
		ok = pthread_mutex_trylock(w->second) == 0;
		if (ok) {
			w->done++;
			pthread_mutex_unlock(w->second);
		}
		pthread_mutex_unlock(w->first);
		if (ok) {
			streak = 0;
		} else {
			/* Back off for a random time in [0, 20 us * 2^streak), capped. */
			long range_ns = 20000L << (streak < 6 ? streak : 6);
			struct timespec wait = { 0, rand_r(&w->seed) % range_ns };

			w->failed++;
			streak++;
			nanosleep(&wait, NULL);             /* hold no lock while waiting */
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1.0, t0 = now();
	struct worker left = { &lock_a, &lock_b, 0, 0, 1 }, right = { &lock_b, &lock_a, 0, 0, 2 };
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
