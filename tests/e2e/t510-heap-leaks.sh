#!/bin/bash
# t510: leaks at exit. Blocks no pointer reaches are "definitely lost" (a
# leak finding at their allocation line), what they point to "indirectly
# lost", what a global or a live block still points to "still reachable";
# the C library's own buffers are never blamed; correct programs are clean.
. "$(dirname "$0")/lib.sh"

cat >"$TEST_DIR/leaky.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *next; char pad[40]; };
static struct node *kept;        /* a global: still reachable */

static void lose(void)
{
	struct node *head = malloc(sizeof *head);   /* LOST: definitely */
	head->next = malloc(sizeof *head);          /* LOST: indirectly */
	head->next->next = NULL;
}

int main(int argc, char **argv)
{
	kept = malloc(sizeof *kept);                /* KEPT */
	kept->next = malloc(sizeof *kept);          /* KEPT too, through kept */
	kept->next->next = NULL;
	if (argc > 1 && !strcmp(argv[1], "leak"))
		lose();
	printf("done\n");                           /* stdout's buffer: not ours */
	return 0;
}
CEOF
build() { gcc -O0 -g -o leaky "$TEST_DIR/leaky.c"; }
line_of() { grep -n -F -- "$1" "$TEST_DIR/leaky.c" | head -n 1 | cut -d: -f1; }
L_LOST=$(line_of "LOST: definitely")

leaks_json() {
	local rc=0
	"$ANALYZE" leaks --json "$1" >"$1.leaks" 2>"$1.err" || rc=$?
	[ "$rc" -le 1 ] || { cat "$1.err"; return 1; }
	echo "$rc" >"$1.leaks.rc"
}
test_expect 'a lost list: one definitely lost (at its line), one indirectly, the rest reachable' '
	build &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./leaky leak >out &&
	grep -x done out &&
	leaks_json t.log && test "$(cat t.log.leaks.rc)" = 1 &&
	json_check t.log.leaks "(j[\"scanned\"] and
		j[\"totals\"][\"definitely lost\"] == {\"blocks\": 1, \"bytes\": 48} and
		j[\"totals\"][\"indirectly lost\"] == {\"blocks\": 1, \"bytes\": 48} and
		j[\"totals\"][\"still reachable\"][\"blocks\"] >= 2)" &&
	report_json t.log &&
	json_check t.log.json "[(x[\"details\"][\"bytes\"], [(fr[\"function\"], fr[\"line\"]) for fr in x[\"stacks\"][0][\"frames\"]][0]) for x in j[\"findings\"] if x[\"kind\"] == \"leak\"] == [(48, (\"lose\", $L_LOST))]"
'

test_expect 'nothing lost: no leak finding, status 0, the blocks are still reachable' '
	build &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./leaky >out &&
	leaks_json t.log && test "$(cat t.log.leaks.rc)" = 0 &&
	json_check t.log.leaks "(j[\"totals\"][\"definitely lost\"][\"blocks\"] == 0 and
		j[\"totals\"][\"still reachable\"][\"blocks\"] >= 3)" &&
	report_json t.log &&
	json_check t.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] == \"leak\"]"
'

if [ -f /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ]; then
test_expect 'spy --allocator jemalloc: the same split (jemalloc'\''s own memory is no root: its stale pointers kept every lost block reachable)' '
	build &&
	"$SPY" -q --allocator jemalloc --no-report -o j.log ./leaky leak >out &&
	grep -x done out &&
	leaks_json j.log && test "$(cat j.log.leaks.rc)" = 1 &&
	json_check j.log.leaks "(j[\"totals\"][\"definitely lost\"] == {\"blocks\": 1, \"bytes\": 48} and
		j[\"totals\"][\"indirectly lost\"] == {\"blocks\": 1, \"bytes\": 48} and
		j[\"totals\"][\"still reachable\"][\"blocks\"] >= 2)" &&
	"$SPY" -q --allocator jemalloc --no-report -o k.log ./leaky >out &&
	leaks_json k.log && test "$(cat k.log.leaks.rc)" = 0 &&
	json_check k.log.leaks "j[\"totals\"][\"definitely lost\"][\"blocks\"] == 0 and j[\"totals\"][\"still reachable\"][\"blocks\"] >= 3"
'
else
test_skip 'spy --allocator jemalloc: leaks' 'libjemalloc.so.2 is not installed'
fi

test_expect 'leaks=0: no scan, and analyze leaks says so' '
	build &&
	SPY_OPTIONS=out=$PWD/t.log:leaks=0 LD_PRELOAD=$LIBSPY ./leaky leak >out &&
	"$ANALYZE" leaks t.log >text &&
	grep -q "no leak scan" text
'

test_expect 'the text view groups by allocation stack' '
	build &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./leaky leak >out &&
	rc=0 && "$ANALYZE" leaks t.log >text || rc=$? &&
	test $rc = 1 &&
	grep -q "^definitely lost: 48 bytes in 1 block" text &&
	grep -q "lose at .*leaky.c:$L_LOST" text
'

test_expect 'the demos of the heap lessons: no leak' '
	for d in dangling_fixed stack_heap array_decay; do
		SPY_OPTIONS=out=$PWD/$d.log LD_PRELOAD=$LIBSPY "$TOP/demos/$d" >/dev/null &&
		report_json $d.log &&
		json_check $d.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] == \"leak\"]" ||
		return 1
	done
'

# Real programs that free what they use, or keep it reachable.
no_leak() {
	for t in traced/trace.*.log; do
		report_json "$t" &&
		json_check "$t.json" "not [x for x in j[\"findings\"] if x[\"kind\"] == \"leak\"]" ||
		return 1
	done
}
test_expect 'python3 -c: no leak blamed' '
	same_output python3 python3 -c "print(sum(range(1000)))" && no_leak
'
test_expect 'python3 with threads: no leak blamed (mappings the kernel merged with libspy ones are still scanned)' '
	same_output python3 python3 "$FIXTURES/threads.py" && no_leak
'
test_expect 'sqlite3: no leak blamed' '
	same_output sqlite3 sh -c "sqlite3 :memory: <\"\$1\"" sh "$FIXTURES/queries.sql" && no_leak
'
test_expect 'git --version and git init: no leak blamed' '
	export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null &&
	same_output git sh -c "git --version >/dev/null && git init -q repo && echo ok" && no_leak
'

cat >"$TEST_DIR/forks.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* The parent keeps a few thousand blocks; its child exits at once
 * ("quiet") or first loses a block of its own ("leaks") and keeps two:
 * one in a global, one only in a block of its parent's. */
static void *keep[5000];
static void *child_kept;

static __attribute__((noinline)) void lose(void)
{
	void *volatile lost = malloc(64);          /* LOST in the child */
	lost = NULL;
}

/* the dead frames below main's, where the lost pointer may linger */
static __attribute__((noinline)) void scrub(void)
{
	volatile char area[8192];
	for (size_t i = 0; i < sizeof area; i++)
		area[i] = 0;
}

int main(int argc, char **argv)
{
	int leaks = argc > 1 && argv[1][0] == 'l';
	for (int i = 0; i < 5000; i++)
		keep[i] = malloc(100);
	pid_t p = fork();
	if (p == 0) {
		if (leaks) {
			lose();
			child_kept = malloc(24);
			*(void **)keep[7] = malloc(40);
		}
		scrub();
		exit(0);
	}
	waitpid(p, NULL, 0);
	printf("kept %d\n", keep[0] != NULL);
	return 0;
}
CEOF

# child_totals MODE: the child's leak totals (its trace names its parent's)
child_leaks() {
	rm -f f.*.log && gcc -O0 -g -o forks "$TEST_DIR/forks.c" &&
	SPY_OPTIONS=out=$PWD/f.%p.log LD_PRELOAD=$LIBSPY ./forks "$1" >out &&
	grep -x "kept 1" out &&
	child=$(for t in f.*.log; do "$ANALYZE" summary --json "$t" | python3 -c "import json,sys; j=json.load(sys.stdin); print(j[\"process\"][\"cause\"])" | grep -qx fork && echo "$t"; done) &&
	test -n "$child" && leaks_json "$child" && cp "$child.leaks" child.leaks
}

test_expect 'a forked child that allocates nothing scans nothing (its blocks are its parent'\''s); one that loses a block has it found' '
	child_leaks quiet &&
	json_check child.leaks "j[\"scanned\"] and j[\"totals\"][\"definitely lost\"][\"blocks\"] == 0 and j[\"totals\"][\"still reachable\"][\"blocks\"] == 0" &&
	child_leaks leaks &&
	json_check child.leaks "j[\"totals\"][\"definitely lost\"] == {\"blocks\": 1, \"bytes\": 64}"
'

test_expect 'a forked child classes only its own blocks: one kept through its parent'\''s block is reachable, the parent'\''s are counted as inherited' '
	child_leaks leaks &&
	json_check child.leaks "(j[\"live_blocks\"] == 3 and j[\"inherited_blocks\"] >= 5000 and
		j[\"totals\"][\"still reachable\"] == {\"blocks\": 2, \"bytes\": 64} and
		j[\"totals\"][\"indirectly lost\"][\"blocks\"] == 0)" &&
	{ "$ANALYZE" leaks "$child" >child.txt; test $? -eq 1; } &&
	grep -q "5[0-9][0-9][0-9] blocks this forked process inherited from its parent" child.txt
'

cat >"$TEST_DIR/last.c" <<'CEOF'
#include <stdlib.h>

/* The program's last allocation, lost ("lose") or kept in a global: the
 * allocator's own pointer to the heap's top lies in its last bytes, which
 * must not count as a reference. */
static void *kept;

static __attribute__((noinline)) void lose(void)
{
	void *volatile p = malloc(72);
	p = NULL;
}

static __attribute__((noinline)) void scrub(void)
{
	volatile char area[8192];
	for (size_t i = 0; i < sizeof area; i++)
		area[i] = 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && argv[1][0] == 'l')
		lose();
	else
		kept = malloc(72);
	scrub();
	return 0;
}
CEOF

test_expect 'the last block a program allocates: definitely lost when dropped, still reachable when kept' '
	gcc -O0 -g -o last "$TEST_DIR/last.c" &&
	SPY_OPTIONS=out=$PWD/l.log LD_PRELOAD=$LIBSPY ./last lose && leaks_json l.log &&
	json_check l.log.leaks "j[\"totals\"][\"definitely lost\"] == {\"blocks\": 1, \"bytes\": 72}" &&
	SPY_OPTIONS=out=$PWD/k.log LD_PRELOAD=$LIBSPY ./last keep && leaks_json k.log &&
	json_check k.log.leaks "j[\"totals\"][\"definitely lost\"][\"blocks\"] == 0 and j[\"totals\"][\"still reachable\"] == {\"blocks\": 1, \"bytes\": 72}"
'

# Two call sites of one leaking function, in a program built without
# debug information: its frames read "function in module+0xOFFSET", and
# the two stacks read apart.
cat >"$TEST_DIR/twice.c" <<'CEOF'
#include <stdlib.h>

static __attribute__((noinline)) void lose(size_t n)
{
	void *volatile p = malloc(n);
	p = NULL;
}

int main(void)
{
	lose(40);
	lose(40);
	return 0;
}
CEOF

test_expect 'a program without debug information: two call sites of one function, two groups that read apart (module+offset)' '
	gcc -O1 -o twice "$TEST_DIR/twice.c" &&
	SPY_OPTIONS=out=$PWD/w.log LD_PRELOAD=$LIBSPY ./twice &&
	rc=0 && "$ANALYZE" leaks w.log >w.txt || rc=$? && test $rc = 1 &&
	test "$(grep -c "^definitely lost: 40 bytes in 1 block" w.txt)" = 2 &&
	grep "^  #1  main in twice+0x[0-9a-f]*$" w.txt >mains &&
	test "$(wc -l <mains)" = 2 && test "$(sort -u mains | wc -l)" = 2
'

# Threads that allocate and return: a block whose only pointer was a local
# of the thread is lost once the thread has ended (glibc keeps its stack,
# stale frames and all, and its arena's record of the heap's top points
# into the last block: neither is a root); one it left in a global is not.
cat >"$TEST_DIR/tleak.c" <<'CEOF'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *kept[4];

static void *work(void *arg)
{
	long i = (long)arg;
	char *buf = malloc(100);            /* LOST: a local of the thread */
	snprintf(buf, 100, "thread %ld", i);
	if (getenv("KEEP"))
		kept[i] = buf;
	return strlen(buf) > 0 ? arg : NULL;
}

int main(void)
{
	pthread_t t[4];
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, work, (void *)i);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	puts("done");
	return 0;
}
CEOF

test_expect 'threads that return without freeing: their blocks are definitely lost (4 of 4, as memcheck says); kept in a global, reachable' '
	gcc -O0 -g -pthread -o tleak "$TEST_DIR/tleak.c" &&
	SPY_OPTIONS=out=$PWD/tl.log LD_PRELOAD=$LIBSPY ./tleak >out && grep -qx done out &&
	leaks_json tl.log &&
	json_check tl.log.leaks "j[\"totals\"][\"definitely lost\"] == {\"blocks\": 4, \"bytes\": 400}" &&
	KEEP=1 SPY_OPTIONS=out=$PWD/tk.log LD_PRELOAD=$LIBSPY ./tleak >out &&
	leaks_json tk.log &&
	json_check tk.log.leaks "j[\"totals\"][\"definitely lost\"][\"blocks\"] == 0 and j[\"totals\"][\"still reachable\"][\"blocks\"] >= 4"
'

# Thread-specific data freed by the program's key destructors (POSIX keys
# and C11 tss), which run after the thread's start routine: the frees are
# recorded, nothing is lost; without destructors the blocks are lost.
cat >"$TEST_DIR/keys.c" <<'CEOF'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <threads.h>

static pthread_key_t key;
static tss_t tkey;

static void drop(void *p) { free(p); }

static void *run(void *a)
{
	pthread_setspecific(key, malloc(100));
	tss_set(tkey, malloc(200));
	return a;
}

int main(int argc, char **argv)
{
	int keep = argc > 1;
	pthread_key_create(&key, keep ? NULL : drop);
	tss_create(&tkey, keep ? NULL : drop);
	for (int i = 0; i < 4; i++) {
		pthread_t t;
		pthread_create(&t, NULL, run, NULL);
		pthread_join(t, NULL);
	}
	puts("done");
	return 0;
}
CEOF

test_expect 'blocks freed by key destructors at thread exit: every free recorded, none lost; kept ones lost' '
	gcc -O0 -g -pthread -o keys "$TEST_DIR/keys.c" &&
	SPY_OPTIONS=out=$PWD/d.log LD_PRELOAD=$LIBSPY ./keys >out && grep -x done out &&
	summary_json d.log &&
	json_check d.log.json "j[\"events\"][\"free\"] == 8" &&
	leaks_json d.log &&
	json_check d.log.leaks "j[\"totals\"][\"definitely lost\"][\"blocks\"] == 0" &&
	SPY_OPTIONS=out=$PWD/n.log LD_PRELOAD=$LIBSPY ./keys keep >out && leaks_json n.log &&
	json_check n.log.leaks "j[\"totals\"][\"definitely lost\"][\"blocks\"] >= 4"
'

# The sizes of the blocks a trace leaves live at its end, one a line.
live_sizes() {
	"$ANALYZE" dump "$1" | awk '$3 == "alloc" { live[$5] = $7 } $3 == "free" { delete live[$5] }
		END { for (a in live) print live[a] }'
}

# A cancelled thread's cleanup handler, a key destructor after
# pthread_exit, and C++ thread_local destructors free blocks: all recorded.
cat >"$TEST_DIR/unwind.c" <<'CEOF'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_key_t key;

static void drop(void *p) { free(p); }

static void *waits(void *a)
{
	void *p = malloc(300);
	pthread_cleanup_push(drop, p);
	for (;;)
		pause();
	pthread_cleanup_pop(1);
	return a;
}

static void *exits(void *a)
{
	pthread_setspecific(key, malloc(100));
	pthread_exit(a);
}

int main(void)
{
	pthread_t t;
	pthread_key_create(&key, drop);
	pthread_create(&t, NULL, waits, NULL);
	usleep(20000);
	pthread_cancel(t);
	pthread_join(t, NULL);
	pthread_create(&t, NULL, exits, NULL);
	pthread_join(t, NULL);
	puts("done");
	return 0;
}
CEOF
cat >"$TEST_DIR/tlocal.cc" <<'CEOF'
#include <cstdio>
#include <cstdlib>
#include <thread>

struct holder {
	void *p = std::malloc(400);
	~holder() { std::free(p); }
};
static thread_local holder h;

int main()
{
	for (int i = 0; i < 3; i++) {
		std::thread t([] { (void)h.p; });
		t.join();
	}
	std::puts("done");
	return 0;
}
CEOF

test_expect 'frees while a thread unwinds (cancelled, pthread_exit) and by thread_local destructors are recorded' '
	gcc -O0 -g -pthread -o unwind "$TEST_DIR/unwind.c" &&
	g++ -O0 -g -pthread -o tlocal "$TEST_DIR/tlocal.cc" &&
	SPY_OPTIONS=out=$PWD/u.log LD_PRELOAD=$LIBSPY ./unwind >out && grep -x done out &&
	SPY_OPTIONS=out=$PWD/c.log LD_PRELOAD=$LIBSPY ./tlocal >out && grep -x done out &&
	live_sizes u.log >u.live && live_sizes c.log >c.live &&
	! grep -x -e 100 -e 300 u.live && ! grep -x 400 c.live &&
	"$ANALYZE" dump u.log | grep -c " free " >u.frees && test "$(cat u.frees)" -ge 2
'

# A list built by pushing at its head: each new node (higher in the heap)
# points to the older one below it. The scan met the lower nodes first,
# and every node read as a leak of its own (10 definitely lost where
# memcheck says 1, with 9 indirectly lost).
cat >"$TEST_DIR/pushlist.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct node { int v; struct node *next; };
static struct node *kept;
int main(int argc, char **argv)
{
	struct node *head = NULL;
	for (int i = 0; i < 10; i++) {
		struct node *n = malloc(sizeof *n);   /* PUSHED */
		n->v = i;
		n->next = head;
		head = n;
	}
	printf("%d\n", head->v);
	if (argc > 1 && !strcmp(argv[1], "keep"))
		kept = head;
	head = NULL;
	return 0;
}
CEOF
L_PUSH=$(grep -n -F "PUSHED" "$TEST_DIR/pushlist.c" | cut -d: -f1)

test_expect 'a list pushed at its head and lost: one block definitely lost, nine indirectly (the nodes point downwards); kept in a global, none' '
	gcc -O0 -g -o pushlist "$TEST_DIR/pushlist.c" &&
	SPY_OPTIONS=out=$PWD/p.log LD_PRELOAD=$LIBSPY ./pushlist >out && test "$(cat out)" = 9 &&
	leaks_json p.log &&
	json_check p.log.leaks "j[\"totals\"][\"definitely lost\"] == {\"blocks\": 1, \"bytes\": 16} and j[\"totals\"][\"indirectly lost\"] == {\"blocks\": 9, \"bytes\": 144}" &&
	report_json p.log &&
	json_check p.log.json "[(x[\"details\"][\"bytes\"], x[\"stacks\"][0][\"frames\"][0][\"line\"]) for x in j[\"findings\"] if x[\"kind\"] == \"leak\"] == [(16, $L_PUSH)]" &&
	SPY_OPTIONS=out=$PWD/k.log LD_PRELOAD=$LIBSPY ./pushlist keep >out &&
	leaks_json k.log && test "$(cat k.log.leaks.rc)" = 0 &&
	json_check k.log.leaks "j[\"totals\"][\"definitely lost\"][\"blocks\"] == 0 and j[\"totals\"][\"indirectly lost\"][\"blocks\"] == 0 and j[\"totals\"][\"still reachable\"][\"blocks\"] >= 10"
'

# A JIT compiler's code holds the addresses of its objects as immediate
# operands, at any byte offset (the JVM's inline caches: java's run read
# 70 blocks definitely lost, 7 once its code was read at every byte).
cat >"$TEST_DIR/jit.c" <<'CEOF'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* A tiny JIT: code that returns the address of a block, held only as the
 * immediate operand of its first instruction (movabs $block, %rax; ret). */
int main(int argc, char **argv)
{
	uint8_t *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED)
		return 1;
	char *block = malloc(64);                 /* JITBLOCK */
	strcpy(block, "held by the code");
	uintptr_t imm = (uintptr_t)block;
	code[0] = 0x48;
	code[1] = 0xb8;                               /* movabs imm64, %rax */
	memcpy(code + 2, &imm, 8);
	code[10] = 0xc3;                              /* ret */
	char *(*get)(void) = (char *(*)(void))code;
	block = NULL;
	printf("%s\n", get());
	if (argc > 1 && !strcmp(argv[1], "drop"))
		memset(code + 2, 0, 8);               /* the code forgets it */
	return 0;
}
CEOF

test_expect 'a block held only by generated code (an unaligned immediate in writable, executable memory) is still reachable; once the code forgets it, definitely lost' '
	gcc -O0 -g -o jit "$TEST_DIR/jit.c" &&
	SPY_OPTIONS=out=$PWD/j.log LD_PRELOAD=$LIBSPY ./jit >out && test "$(cat out)" = "held by the code" &&
	leaks_json j.log && test "$(cat j.log.leaks.rc)" = 0 &&
	json_check j.log.leaks "j[\"totals\"][\"definitely lost\"][\"blocks\"] == 0" &&
	SPY_OPTIONS=out=$PWD/d.log LD_PRELOAD=$LIBSPY ./jit drop >out &&
	leaks_json d.log &&
	json_check d.log.leaks "j[\"totals\"][\"definitely lost\"] == {\"blocks\": 1, \"bytes\": 64}"
'

# A thread alive at exit on a stack that ended threads used before (glibc
# keeps their stacks): the dead stacks are no roots, but its own frames
# are. It may get one of theirs whole, or, asking for a smaller stack, one
# that only overlaps what libspy noted of theirs.
cat >"$TEST_DIR/reuse.c" <<'CEOF'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *quick(void *arg) { return arg; }

/* Alive at exit, on a stack an ended thread used before: its local is a
 * root, and the block it points to is reachable. */
static void *holder(void *arg)
{
	char *volatile buf = malloc(200);
	strcpy(buf, "held");
	__atomic_store_n((int *)arg, 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
	return buf;
}

int main(int argc, char **argv)
{
	pthread_t t;
	for (int i = 0; i < 20; i++) {
		pthread_create(&t, NULL, quick, NULL);
		pthread_join(t, NULL);
	}
	/* with a size, the holder asks for a smaller stack than the ended
	 * threads had: glibc still hands it one of theirs */
	static int ready;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (argc > 1)
		pthread_attr_setstacksize(&attr, (size_t)atol(argv[1]));
	pthread_create(&t, &attr, holder, &ready);
	while (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	puts("done");
	return 0;
}
CEOF

test_expect 'a thread alive at exit on a stack an ended thread had: its local keeps its block reachable (same size and a smaller one)' '
	gcc -O0 -g -pthread -o reuse "$TEST_DIR/reuse.c" &&
	for size in "" 4194304; do
		rm -f ru.log &&
		SPY_OPTIONS=out=$PWD/ru.log LD_PRELOAD=$LIBSPY ./reuse $size >out && grep -qx done out &&
		leaks_json ru.log &&
		json_check ru.log.leaks "j[\"totals\"][\"definitely lost\"][\"blocks\"] == 0 and j[\"totals\"][\"still reachable\"][\"blocks\"] >= 1" || return 1
	done
'

cat >"$TEST_DIR/plug.c" <<'CEOF'
#include <stdlib.h>
static void *kept[4];
void plug_init(void)
{
	for (int i = 0; i < 4; i++)
		kept[i] = malloc(16);                   /* PLUG ALLOC */
}
CEOF

cat >"$TEST_DIR/unload.c" <<'CEOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <sys/mman.h>

int main(void)
{
	void *h = dlopen("./plug.so", RTLD_NOW);
	if (!h)
		return 1;
	void (*init)(void) = (void (*)(void))dlsym(h, "plug_init");
	struct link_map *lm;
	dlinfo(h, RTLD_DI_LINKMAP, &lm);
	void *base = (void *)lm->l_addr;
	init();
	dlclose(h);
	/* other memory where the plug-in's code was (an arena grown into
	 * its place: PHP unloads its extensions at exit) */
	void *p = mmap(base, 8192, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	puts(p == base ? "reused" : "not reused");
	return 0;
}
CEOF

test_expect 'blocks lost by a library unloaded since, its addresses reused by other memory: the leak names the library'"'"'s line' '
	gcc -O0 -g -shared -fPIC -o plug.so "$TEST_DIR/plug.c" &&
	gcc -O0 -g -o unload "$TEST_DIR/unload.c" -ldl &&
	SPY_OPTIONS=out=$PWD/u.log LD_PRELOAD=$LIBSPY ./unload >out && test "$(cat out)" = reused &&
	leaks_json u.log &&
	L=$(grep -n "PLUG ALLOC" "$TEST_DIR/plug.c" | cut -d: -f1) &&
	json_check u.log.leaks "any(g[\"class\"] == \"definitely lost\" and g[\"blocks\"] == 4 and g[\"frames\"][0][\"function\"] == \"plug_init\" and g[\"frames\"][0][\"line\"] == $L for g in j[\"groups\"])"
'

# Pointers kept in shared memory of no file (MAP_SHARED | MAP_ANONYMOUS, as
# a parent and its children share; System V segments): memcheck reads them
# as roots; libspy read only private mappings and called the blocks lost.
cat >"$TEST_DIR/shared.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

int main(int argc, char **argv)
{
	char **anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	char **sysv = id >= 0 ? shmat(id, NULL, 0) : (void *)-1;
	if (id >= 0)
		shmctl(id, IPC_RMID, NULL);
	if (anon == MAP_FAILED || sysv == (void *)-1)
		return 1;
	anon[3] = malloc(40);                 /* kept in shared memory */
	sysv[5] = malloc(56);                 /* kept in a System V segment */
	strcpy(anon[3], "shared");
	if (argc > 1 && !strcmp(argv[1], "drop"))
		anon[3] = sysv[5] = NULL;
	printf("%s\n", argc > 1 ? "dropped" : "kept");
	return 0;
}
CEOF

test_expect 'blocks held only in shared anonymous memory and a System V segment are still reachable; dropped, definitely lost' '
	gcc -O0 -g -o shared "$TEST_DIR/shared.c" &&
	SPY_OPTIONS=out=$PWD/s.log LD_PRELOAD=$LIBSPY ./shared >out && test "$(cat out)" = kept &&
	leaks_json s.log && test "$(cat s.log.leaks.rc)" = 0 &&
	json_check s.log.leaks "j[\"totals\"][\"definitely lost\"][\"blocks\"] == 0" &&
	SPY_OPTIONS=out=$PWD/d.log LD_PRELOAD=$LIBSPY ./shared drop >out &&
	leaks_json d.log &&
	json_check d.log.leaks "j[\"totals\"][\"definitely lost\"] == {\"blocks\": 2, \"bytes\": 96}"
'

# An alternate signal stack set up in main from a malloc'd block: the
# kernel holds the only pointer (sigaltstack gives it back), so it is
# still reachable; freed and replaced by nothing, it is no leak at all;
# a block lost beside it still is.
cat >"$TEST_DIR/altstack.c" <<'CEOF'
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup(void)
{
	stack_t ss = { .ss_sp = malloc(65536), .ss_size = 65536 };
	sigaltstack(&ss, NULL);
}

int main(int argc, char **argv)
{
	setup();
	if (argc > 1 && !strcmp(argv[1], "lose"))
		malloc(24);                          /* LOST */
	puts("done");
	return 0;
}
CEOF

test_expect 'a malloc'\''d alternate signal stack only the kernel points to is still reachable, not lost' '
	gcc -O0 -g -o altstack "$TEST_DIR/altstack.c" &&
	SPY_OPTIONS=out=$PWD/a.log LD_PRELOAD=$LIBSPY ./altstack >out && test "$(cat out)" = done &&
	leaks_json a.log && test "$(cat a.log.leaks.rc)" = 0 &&
	json_check a.log.leaks "j[\"totals\"][\"definitely lost\"][\"blocks\"] == 0" &&
	SPY_OPTIONS=out=$PWD/b.log LD_PRELOAD=$LIBSPY ./altstack lose >out &&
	leaks_json b.log &&
	json_check b.log.leaks "j[\"totals\"][\"definitely lost\"] == {\"blocks\": 1, \"bytes\": 24}"
'

test_done
