/* deadlock.c: two transfers take the same two locks in opposite orders.
 *
 * Lesson: deadlock and lock ordering. transfer(from, to) locks the `from`
 * account, then the `to` account. Alice pays Bob (locks 0 then 1) while Bob
 * pays Alice (locks 1 then 0). If each thread gets its first lock before the
 * other gets its second, both wait forever.
 * Bug: the lock order depends on the direction of the transfer.
 * libspy should report: lock-order-cycle (accounts[0].m -> accounts[1].m in
 * one thread, accounts[1].m -> accounts[0].m in the other, with both
 * acquisition stacks of each edge) on EVERY run, including the default one,
 * which does not hang; and deadlock, the moment it forms, with --hang.
 * Modes:
 *   (default)   the second transfer starts only after the first has finished:
 *               the inversion is in the lock-order graph, the run completes
 *   --hang      both threads take their first lock, meet at a barrier, then
 *               take their second: a real deadlock, the program never ends
 *               (stop it with Ctrl-C, or run it under `timeout 5`)
 * The correct variants are in deadlock_fixed.c.
 * Run:  ./demos/deadlock [--hang]
 *       LD_PRELOAD=./libspy.so ./demos/deadlock
 *       spy ./demos/deadlock
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct account {
	pthread_mutex_t m;
	long balance;
};

static struct account accounts[2] = {
	{ PTHREAD_MUTEX_INITIALIZER, 100 },
	{ PTHREAD_MUTEX_INITIALIZER, 100 },
};
static int hang;
static pthread_barrier_t both_hold_one;

struct transfer {
	int from, to;
	long amount;
};

static void *transfer(void *arg)
{
	struct transfer *t = arg;

	pthread_mutex_lock(&accounts[t->from].m);          /* first lock */
	if (hang)
		pthread_barrier_wait(&both_hold_one);       /* now each holds one */
	pthread_mutex_lock(&accounts[t->to].m);            /* BUG: order depends on direction */
	accounts[t->from].balance -= t->amount;
	accounts[t->to].balance += t->amount;
	pthread_mutex_unlock(&accounts[t->to].m);
	pthread_mutex_unlock(&accounts[t->from].m);
	return NULL;
}

int main(int argc, char **argv)
{
	struct transfer alice_to_bob = { 0, 1, 30 }, bob_to_alice = { 1, 0, 10 };
	pthread_t a, b;

	hang = argc > 1 && strcmp(argv[1], "--hang") == 0;
	if (hang) {
		printf("both threads take their first lock, then wait for each other: this hangs\n");
		fflush(stdout);
		pthread_barrier_init(&both_hold_one, NULL, 2);
		pthread_create(&a, NULL, transfer, &alice_to_bob);
		pthread_create(&b, NULL, transfer, &bob_to_alice);
	} else {
		/* One after the other: the opposite orders never overlap in time. */
		pthread_create(&a, NULL, transfer, &alice_to_bob);
		pthread_join(a, NULL);
		pthread_create(&b, NULL, transfer, &bob_to_alice);
	}
	if (hang)
		pthread_join(a, NULL);                      /* never returns */
	pthread_join(b, NULL);
	printf("alice %ld, bob %ld (total %ld)\n", accounts[0].balance, accounts[1].balance,
	       accounts[0].balance + accounts[1].balance);
	return 0;
}
