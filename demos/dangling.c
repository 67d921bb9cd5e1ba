/* dangling.c: using a pointer after the block it points to was freed.
 *
 * Lesson: dangling pointers. free() gives the block back to the allocator but
 * leaves the pointer unchanged. Writing through it usually does NOT crash at
 * once: the write lands in a freed block that glibc will hand out again, and
 * the damage shows up later, somewhere else.
 * Bug (default mode): a player record is freed by remove_player(), then the
 * caller still writes the score (bytes 32..35 of the 64-byte block: the first
 * 16 bytes of a freed block hold glibc's tcache pointers, which we avoid so
 * that the run does not crash under plain glibc) and reads it back.
 * libspy should report: use-after-free, with the block's allocation stack
 * (new_player), its free stack (remove_player) and the access (the exact line
 * in guard mode; "freed block was modified" in default mode).
 * Modes (each opt-in, because glibc itself aborts on them with SIGABRT):
 *   --double-free   frees the same block twice            -> double-free
 *   --invalid-free  frees the address of a local variable,
 *                   then a pointer into the middle of a
 *                   heap block (glibc aborts at the first) -> invalid-free
 *   --interior-free only the pointer into the middle        -> invalid-free
 * Run:  ./demos/dangling [--double-free|--invalid-free|--interior-free]
 *       LD_PRELOAD=./libspy.so ./demos/dangling
 *       spy ./demos/dangling
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* gcc sees some of these bugs at compile time; the demo makes them on purpose. */
#pragma GCC diagnostic ignored "-Wuse-after-free"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"

struct player {
	char name[32];      /* bytes 0..31: the first 16 overlap tcache's links once freed */
	volatile int score; /* bytes 32..35; volatile: the compiler must perform
			     * every access, even the wrong ones */
	char pad[28];       /* the record is 64 bytes */
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

static void remove_player(struct player *p)
{
	free(p);            /* the caller's pointer now dangles */
}

static int use_after_free(void)
{
	struct player *p = new_player("ada");
	int score;

	p->score = 10;
	remove_player(p);
	p->score = 99;      /* BUG: write into a freed block */
	score = p->score;   /* BUG: read from it */
	/* Deterministic output: we do not print what the freed name bytes hold. */
	printf("wrote score %d through a dangling pointer and read back %d; no crash\n",
	       99, score);
	return 0;
}

static int double_free(void)
{
	struct player *p = new_player("grace");

	remove_player(p);
	printf("freeing the same block a second time (glibc aborts here)\n");
	fflush(stdout);
	free(p);            /* BUG: double free */
	printf("still running after the double free\n");
	return 0;
}

static int invalid_free(int with_stack)
{
	int on_stack = 5;
	struct player *p = new_player("linus");

	if (with_stack) {
		printf("freeing the address of a local variable (glibc aborts here)\n");
		fflush(stdout);
		free(&on_stack);    /* BUG: never came from malloc */
	}
	printf("freeing a pointer into the middle of a heap block (glibc aborts here)\n");
	fflush(stdout);
	free((void *)&p->score); /* BUG: not the start of a block */
	printf("still running after the invalid frees\n");
	free(p);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "--use-after-free";

	if (strcmp(mode, "--use-after-free") == 0)
		return use_after_free();
	if (strcmp(mode, "--double-free") == 0)
		return double_free();
	if (strcmp(mode, "--invalid-free") == 0)
		return invalid_free(1);
	if (strcmp(mode, "--interior-free") == 0)
		return invalid_free(0);
	fprintf(stderr, "usage: %s [--use-after-free|--double-free|--invalid-free|--interior-free]\n", argv[0]);
	return 2;
}
