#!/bin/bash
# t570: the live-block map at its edges. A program that exits while other
# threads still allocate and free (small blocks through the quarantine, big
# ones unmapped at once) keeps its output and status, and the check of
# held blocks and the leak scan at exit report nothing that did not happen.
# Blocks the shadow cannot hold (jemalloc's 8-byte blocks, not 16-byte
# aligned) are judged like the others: a double free, a leak. A program
# with a malloc of its own runs as it would, and the report says why its
# heap is empty.
. "$(dirname "$0")/lib.sh"

cat >"$TEST_DIR/racer.c" <<'CEOF'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void lose(void)
{
	char *p = malloc(40);               /* LEAK: at exit */
	p[0] = 1;
}

static void *churn(void *arg)
{
	unsigned long x = (unsigned long)arg * 2654435761u + 1;
	for (;;) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t size = x % 8 ? 16 + x % 2000 : 200000 + x % 100000;
		char *p = malloc(size);
		if (!p)
			continue;
		memset(p, 1, size < 4096 ? size : 4096);
		free(p);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[3];
	for (long i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, churn, (void *)i);
	usleep(30000);
	lose();
	printf("done\n");
	return 7;                           /* while the threads still churn */
}
CEOF

cat >"$TEST_DIR/tiny.c" <<'CEOF'
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	char *keep[8];
	for (int i = 0; i < 8; i++)        /* 8-byte blocks, side by side */
		keep[i] = malloc(8);
	char *p = malloc(4);               /* TINY: the block */
	strcpy(p, "abc");
	if (argc > 1 && !strcmp(argv[1], "double")) {
		free(p);                   /* TINY: first free */
		free(p);                   /* TINY: second free */
	} else if (argc > 1 && !strcmp(argv[1], "leak")) {
		p = NULL;                  /* TINY: lost */
	} else if (argc > 1 && !strcmp(argv[1], "grow")) {
		/* every byte the allocator said a block may use, kept by a
		 * realloc that moves it (8-byte blocks side by side: half
		 * of them off the 16-byte grid) */
		char *q[8];
		for (int i = 0; i < 8; i++) {
			q[i] = malloc(4);
			memset(q[i], 'a' + i, malloc_usable_size(q[i]));
		}
		for (int i = 0; i < 8; i++) {
			size_t usable = malloc_usable_size(q[i]), kept = 0;
			q[i] = realloc(q[i], 164);
			while (kept < usable && q[i][kept] == 'a' + i)
				kept++;
			printf("kept %zu of %zu\n", kept, usable);
			free(q[i]);
		}
		free(p);
	} else {
		free(p);
	}
	for (int i = 0; i < 8; i++)
		free(keep[i]);
	printf("survived\n");
	return 0;
}
CEOF
line_of() { grep -n -F -- "$1" "$TEST_DIR/$2" | head -n 1 | cut -d: -f1; }
L_LEAK=$(line_of "LEAK: at exit" racer.c)
L_TINY=$(line_of "TINY: the block" tiny.c)
L_SECOND=$(line_of "TINY: second free" tiny.c)

report() {
	local rc=0
	"$ANALYZE" report --json "$1" >"$1.json" 2>"$1.err" || rc=$?
	[ "$rc" -le 1 ] || { cat "$1.err"; return 1; }
}

test_expect 'an exit while three threads churn: status, output, no false finding (10 runs)' '
	gcc -O0 -g -pthread -o racer "$TEST_DIR/racer.c" &&
	for i in 1 2 3 4 5 6 7 8 9 10; do
		rc=0 && SPY_OPTIONS=out=$PWD/r$i.log LD_PRELOAD=$LIBSPY ./racer >out 2>err || rc=$?
		test "$rc" = 7 && grep -qx done out && ! test -s err &&
		report r$i.log &&
		json_check r$i.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] in (\"use-after-free\", \"double-free\", \"invalid-free\")] and any(x[\"kind\"] == \"leak\" and x[\"stacks\"][0][\"frames\"][0][\"function\"] == \"lose\" and x[\"stacks\"][0][\"frames\"][0][\"line\"] == $L_LEAK for x in j[\"findings\"])" || return 1
	done
'

JEMALLOC=$(ls /usr/lib/*/libjemalloc.so.2 /usr/lib64/libjemalloc.so.2 2>/dev/null | head -n 1)
if [ -n "$JEMALLOC" ]; then
test_expect 'jemalloc 8-byte blocks: a double free is caught, the program survives' '
	gcc -O0 -g -o tiny "$TEST_DIR/tiny.c" &&
	rc=0 && "$SPY" --allocator jemalloc --no-report -o d.log ./tiny double >out 2>err || rc=$? &&
	test "$rc" = 0 && grep -qx survived out &&
	report d.log &&
	json_check d.log.json "[(x[\"stacks\"][0][\"frames\"][0][\"line\"], x[\"stacks\"][2][\"frames\"][0][\"line\"]) for x in j[\"findings\"] if x[\"kind\"] == \"double-free\"] == [($L_SECOND, $L_TINY)]"
'

test_expect 'jemalloc 8-byte blocks: a block grown by realloc keeps all of its usable size' '
	gcc -O0 -g -o tiny "$TEST_DIR/tiny.c" &&
	LD_PRELOAD=$JEMALLOC ./tiny grow >plain.out &&
	test "$(grep -cx "kept 8 of 8" plain.out)" = 8 &&
	"$SPY" --allocator jemalloc --no-report -o g.log ./tiny grow >out 2>err &&
	cmp plain.out out &&
	report g.log &&
	json_check g.log.json "not j[\"findings\"]"
'

# (whether a lost block counts as definitely lost under jemalloc depends
# on what its own metadata still holds: the scan reads that memory too)
test_expect 'jemalloc 8-byte blocks: a block left live is in the leak scan, a clean run has no finding' '
	gcc -O0 -g -o tiny "$TEST_DIR/tiny.c" &&
	"$SPY" --allocator jemalloc --no-report -o l.log ./tiny leak >out 2>err &&
	"$ANALYZE" leaks --json l.log >l.json; test $? -le 1 &&
	json_check l.json "[(g[\"bytes\"], g[\"frames\"][0][\"line\"]) for g in j[\"groups\"] if g[\"frames\"] and g[\"frames\"][0][\"function\"] == \"main\"] == [(4, $L_TINY)]" &&
	"$SPY" --allocator jemalloc --no-report -o c.log ./tiny >out 2>err &&
	report c.log &&
	json_check c.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] in (\"leak\", \"double-free\", \"invalid-free\")]"
'
else
test_skip 'jemalloc 8-byte blocks' 'libjemalloc2 is not installed'
fi


cat >"$TEST_DIR/ownmalloc.c" <<'CEOF'
#include <stdio.h>
#include <string.h>
#include <unistd.h>
/* a malloc of the program's own: a bump allocator on sbrk */
void *malloc(size_t n)
{
	char *p = sbrk((n + 31) & ~(size_t)15);
	return p == (void *)-1 ? NULL : p + 16;
}
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b)
{
	void *p = malloc(a * b);
	return p ? memset(p, 0, a * b) : NULL;
}
void *realloc(void *p, size_t n)
{
	void *q = malloc(n);
	if (p && q)
		memcpy(q, p, n); /* enough for this test: blocks only grow */
	return q;
}
int main(void)
{
	char *s = malloc(100);
	strcpy(s, "own malloc");
	s = realloc(s, 200);
	printf("%s\n", s);
	free(s);
	return 0;
}
CEOF

test_expect 'a program with a malloc of its own: unchanged, and a note says the heap goes unseen; an ordinary one has no such note' '
	gcc -O0 -g -o ownmalloc "$TEST_DIR/ownmalloc.c" &&
	same_output ownmalloc "$PWD/ownmalloc" &&
	t=$(ls traced/trace.*.log) && "$ANALYZE" summary --json $t >s.json &&
	json_check s.json "[n[\"text\"] for n in j[\"notes\"] if \"ahead of libspy\" in n[\"text\"] and \"ownmalloc\" in n[\"text\"]] != []" &&
	json_check s.json "j[\"calls\"].get(\"malloc\", 0) == 0" &&
	SPY_OPTIONS=out=$PWD/o.log LD_PRELOAD=$LIBSPY "$TOP/demos/stack_heap" >/dev/null &&
	"$ANALYZE" summary --json o.log >o.json &&
	json_check o.json "not [n for n in j[\"notes\"] if \"ahead of libspy\" in n[\"text\"]]"
'

cat >"$TEST_DIR/takes_malloc.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>

/* Built without position independence, a program that takes malloc's
 * address gets a stub standing for it (python3 is built so). */
void *(*volatile allocate)(size_t);
void (*volatile release)(void *);

int main(void)
{
	allocate = malloc;  /* an address in the code, not a relocated word */
	release = free;
	char *p = allocate(40);
	p[0] = 0;
	release(p);
	p = malloc(24);
	printf("%d\n", p != NULL);
	free(p);
	return 0;
}
CEOF

test_expect 'a program without position independence that takes malloc'\''s address: no "ahead of libspy" note, its calls are seen' '
	gcc -O0 -g -fno-pie -no-pie -o takes_malloc "$TEST_DIR/takes_malloc.c" &&
	readelf -W --dyn-syms takes_malloc | grep -q "[1-9a-f][0-9a-f]* *0 FUNC *GLOBAL DEFAULT *UND malloc" &&
	SPY_OPTIONS=out=$PWD/tm.log LD_PRELOAD=$LIBSPY ./takes_malloc >out &&
	grep -qx 1 out &&
	"$ANALYZE" summary --json tm.log >tm.json &&
	json_check tm.json "not [n for n in j[\"notes\"] if \"ahead of libspy\" in n[\"text\"]]" &&
	json_check tm.json "j[\"calls\"].get(\"malloc\", 0) >= 2 and j[\"calls\"].get(\"free\", 0) >= 2"
'

# The whole malloc family at its edges (sizes that overflow, alignments
# glibc refuses, malloc(0), realloc(p, 0), errno kept): the same answers
# as without libspy, on glibc and on jemalloc, which has no pvalloc (the
# name reached glibc's, whose block libspy then asked jemalloc about: a
# crash).
cat >"$TEST_DIR/edges.c" <<'CEOF'
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define SHOW(name, expr) do { errno = 0; void *r_ = (void *)(expr); printf("%-28s %s errno=%d\n", name, r_ ? "ptr" : "NULL", errno); } while (0)
int main(void)
{
	void *p = malloc(10);
	errno = 0; void *q = realloc(p, 0); printf("realloc(p,0) %s errno=%d\n", q ? "ptr" : "NULL", errno);
	SHOW("malloc(SIZE_MAX)", malloc(SIZE_MAX));
	SHOW("malloc(PTRDIFF_MAX)", malloc(PTRDIFF_MAX));
	SHOW("calloc(2^33,2^33)", calloc((size_t)1 << 33, (size_t)1 << 33));
	void *a = malloc(16);
	errno = 0; void *b = realloc(a, SIZE_MAX); printf("realloc(a,MAX) %s errno=%d\n", b ? "ptr" : "NULL", errno); free(b ? b : a);
	SHOW("aligned_alloc(3,9)", aligned_alloc(3, 9));
	SHOW("aligned_alloc(64,100)", aligned_alloc(64, 100));
	SHOW("aligned_alloc(1<<20,10)", aligned_alloc(1 << 20, 10));
	SHOW("memalign(24,10)", memalign(24, 10));
	SHOW("memalign(0,10)", memalign(0, 10));
	void *m = NULL;
	printf("posix_memalign(0) = %d\n", posix_memalign(&m, 0, 10));
	printf("posix_memalign(24) = %d\n", posix_memalign(&m, 24, 10));
	printf("posix_memalign(64) = %d %d\n", posix_memalign(&m, 64, 10), ((uintptr_t)m & 63) == 0); free(m);
	printf("posix_memalign(64,MAX) = %d\n", posix_memalign(&m, 64, SIZE_MAX));
	SHOW("valloc(1)", valloc(1));
	SHOW("pvalloc(1)", pvalloc(1));
	SHOW("reallocarray(NULL,2^40,2^40)", reallocarray(NULL, (size_t)1 << 40, (size_t)1 << 40));
	SHOW("malloc(0)", malloc(0));
	void *z = malloc(0); printf("usable(malloc(0)) %zu\n", malloc_usable_size(z)); free(z);
	printf("usable(NULL) %zu\n", malloc_usable_size(NULL));
	printf("mallopt %d\n", mallopt(M_MMAP_THRESHOLD, 4096));
	void *big = malloc(100000); printf("trim %d\n", malloc_trim(0) >= 0); free(big);
	errno = 12345; free(NULL); printf("errno after free(NULL) %d\n", errno);
	errno = 777; void *k = malloc(8); free(k); printf("errno after malloc/free %d\n", errno);
	return 0;
}
CEOF

test_expect 'the malloc family at its edges: the same answers and errno as without libspy, on glibc and on jemalloc' '
	gcc -O0 -g -w -o edges "$TEST_DIR/edges.c" &&
	./edges >plain.out &&
	SPY_OPTIONS=out=$PWD/g.log LD_PRELOAD=$LIBSPY ./edges >spy.out && cmp plain.out spy.out &&
	report_json g.log &&
	json_check g.log.json "not [f for f in j[\"findings\"] if f[\"kind\"] in (\"crash\", \"invalid-free\", \"double-free\")]" &&
	if [ -f /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ]; then
		LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ./edges >jplain.out &&
		"$SPY" --allocator jemalloc --no-report -o j.log ./edges >jspy.out && cmp jplain.out jspy.out &&
		report_json j.log &&
		json_check j.log.json "not [f for f in j[\"findings\"] if f[\"kind\"] in (\"crash\", \"invalid-free\", \"double-free\")]"
	fi
'

# A forked child's leak scan looks again at every block the child's trace
# handed out: one freed since is glibc's again (its chunk in glibc's lists,
# the next chunk's header saying so), not a block written past its end.
cat >"$TEST_DIR/forked.c" <<'CEOF'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *a;

static void *drop(void *arg)
{
	(void)arg;
	free(a);        /* held until this thread ends, then glibc's */
	return NULL;
}

int main(int argc, char **argv)
{
	pid_t pid = fork();
	if (pid == 0) {
		a = malloc(2000);          /* FORKED: too big for the tcache */
		char *b = malloc(24);      /* the block after it, kept */
		if (argc > 1 && !strcmp(argv[1], "overrun")) {
			char *c = malloc(24);      /* FORKED: no slack */
			char *d = malloc(24);      /* kept, its header hit */
			memset(c, 'x', 32);        /* FORKED: over d's header */
			printf("child %d\n", d != NULL);
		}
		pthread_t t;
		pthread_create(&t, NULL, drop, NULL);
		pthread_join(t, NULL);
		printf("child %d\n", b != NULL);
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("parent %d\n", WEXITSTATUS(st));
	return 0;
}
CEOF

test_expect 'a forked child whose thread freed a block: no heap damage found; one that wrote past a block: found' '
	gcc -O0 -g -w -pthread -o forked "$TEST_DIR/forked.c" &&
	mkdir clean overrun &&
	(cd clean && "$SPY" --no-report -o f.log ../forked >out 2>err) &&
	test "$(ls clean/f.[0-9]*.log 2>/dev/null | wc -l)" -ge 1 &&
	for f in clean/f.log clean/f.[0-9]*.log; do
		report "$f" &&
		json_check "$f.json" "not [x for x in j[\"findings\"] if x[\"kind\"] in (\"heap-overflow\", \"heap-damage\")]" || return 1
	done &&
	(cd overrun && "$SPY" --no-report -o f.log ../forked overrun >out 2>err) &&
	found=0 &&
	for f in overrun/f.log overrun/f.[0-9]*.log; do
		report "$f" &&
		if json_check "$f.json" "[x for x in j[\"findings\"] if x[\"kind\"] == \"heap-overflow\" and x[\"severity\"] == \"error\"]" 2>/dev/null >/dev/null; then found=$((found + 1)); fi
	done &&
	test "$found" = 1
'

test_done
