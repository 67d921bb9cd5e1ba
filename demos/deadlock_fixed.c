/* deadlock_fixed.c: three correct ways to move money between two accounts.
 *
 * Lesson: deadlock and lock ordering (the broken version is deadlock.c).
 * Modes:
 *   (default)   --order: one global order. transfer() always locks the account
 *               with the lower index first, whatever the direction. The two
 *               threads run at the same time, many transfers each.
 *   --gate      both orders (0 then 1, and 1 then 0) as in deadlock.c, but
 *               always under a common outer lock `bank`: two threads can
 *               never hold one account each, so this cannot deadlock.
 *   --trylock   the second lock is taken with pthread_mutex_trylock; on
 *               failure the thread releases its first lock, backs off and
 *               retries, so it never waits while holding a lock.
 * libspy should report: nothing in any mode (no lock-order-cycle, no
 * deadlock): the gate lock guards the inverted pair, and a trylock never
 * blocks, so neither closes a cycle.
 * Run:  ./demos/deadlock_fixed [--order|--gate|--trylock]
 *       LD_PRELOAD=./libspy.so ./demos/deadlock_fixed --gate
 *       spy ./demos/deadlock_fixed
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#define TRANSFERS 10000

struct account {
	pthread_mutex_t m;
	long balance;
};

static struct account accounts[2] = {
	{ PTHREAD_MUTEX_INITIALIZER, 100000 },
	{ PTHREAD_MUTEX_INITIALIZER, 100000 },
};
static pthread_mutex_t bank = PTHREAD_MUTEX_INITIALIZER;   /* the gate */
static enum { ORDER, GATE, TRYLOCK } mode;

struct transfer {
	int from, to;
	long amount;
	unsigned long retries;
};

static void move(struct transfer *t)
{
	accounts[t->from].balance -= t->amount;
	accounts[t->to].balance += t->amount;
}

static void transfer_ordered(struct transfer *t)
{
	int first = t->from < t->to ? t->from : t->to;    /* lower index first */
	int second = t->from < t->to ? t->to : t->from;

	pthread_mutex_lock(&accounts[first].m);
	pthread_mutex_lock(&accounts[second].m);
	move(t);
	pthread_mutex_unlock(&accounts[second].m);
	pthread_mutex_unlock(&accounts[first].m);
}

static void transfer_gated(struct transfer *t)
{
	pthread_mutex_lock(&bank);
	pthread_mutex_lock(&accounts[t->from].m);          /* either order is fine */
	pthread_mutex_lock(&accounts[t->to].m);            /* under the gate */
	move(t);
	pthread_mutex_unlock(&accounts[t->to].m);
	pthread_mutex_unlock(&accounts[t->from].m);
	pthread_mutex_unlock(&bank);
}

static void transfer_trylock(struct transfer *t)
{
	for (;;) {
		pthread_mutex_lock(&accounts[t->from].m);
		if (pthread_mutex_trylock(&accounts[t->to].m) == 0)
			break;
		pthread_mutex_unlock(&accounts[t->from].m);  /* back off: hold nothing */
		t->retries++;
		sched_yield();
	}
	move(t);
	pthread_mutex_unlock(&accounts[t->to].m);
	pthread_mutex_unlock(&accounts[t->from].m);
}

static void *worker(void *arg)
{
	for (int i = 0; i < TRANSFERS; i++) {
		if (mode == ORDER)
			transfer_ordered(arg);
		else if (mode == GATE)
			transfer_gated(arg);
		else
			transfer_trylock(arg);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct transfer alice_to_bob = { 0, 1, 3, 0 }, bob_to_alice = { 1, 0, 1, 0 };
	const char *arg = argc > 1 ? argv[1] : "--order";
	pthread_t a, b;

	if (strcmp(arg, "--order") == 0)
		mode = ORDER;
	else if (strcmp(arg, "--gate") == 0)
		mode = GATE;
	else if (strcmp(arg, "--trylock") == 0)
		mode = TRYLOCK;
	else {
		fprintf(stderr, "usage: %s [--order|--gate|--trylock]\n", argv[0]);
		return 2;
	}
	pthread_create(&a, NULL, worker, &alice_to_bob);
	pthread_create(&b, NULL, worker, &bob_to_alice);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	printf("mode %s: %d transfers each way\n", arg + 2, TRANSFERS);
	printf("alice %ld, bob %ld (total %ld)\n", accounts[0].balance, accounts[1].balance,
	       accounts[0].balance + accounts[1].balance);
	/* Retries (trylock mode) vary from run to run, so they go to stderr. */
	if (mode == TRYLOCK)
		fprintf(stderr, "trylock retries: %lu\n", alice_to_bob.retries + bob_to_alice.retries);
	return 0;
}
