/* dangling_fixed.c: the fixed variant of dangling.c.
 *
 * Lesson: dangling pointers. The owner frees the block and then sets its
 * pointer to NULL, so a later use is an obvious NULL check instead of a
 * silent write into memory that belongs to someone else; every block is
 * freed exactly once.
 * libspy should report: nothing (no use-after-free, double-free,
 * invalid-free or leak).
 * Run:  ./demos/dangling_fixed
 *       LD_PRELOAD=./libspy.so ./demos/dangling_fixed
 *       spy ./demos/dangling_fixed
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct player {
	char name[32];
	int score;
	char pad[28];
};

static struct player *new_player(const char *name)
{
	struct player *p = malloc(sizeof *p);

	if (!p)
		exit(1);
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "%s", name);
	return p;
}

/* Takes the address of the caller's pointer so it can clear it. */
static void remove_player(struct player **pp)
{
	free(*pp);
	*pp = NULL;
}

int main(void)
{
	struct player *p = new_player("ada");

	p->score = 10;
	printf("%s scored %d\n", p->name, p->score);
	remove_player(&p);
	if (p == NULL)
		printf("player removed; the pointer is NULL, so it is not used again\n");
	else
		p->score = 99;
	remove_player(&p);  /* free(NULL) is allowed and does nothing */
	printf("removing again is harmless: free(NULL) does nothing\n");
	return 0;
}
