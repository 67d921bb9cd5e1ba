#!/bin/bash
# t410: a stack overflow keeps its exit status (139) and becomes a
# stack-overflow finding naming the repeating function, the depth, the
# bytes per frame and the limit with where it comes from (ulimit -s for the
# main thread, the attributes for a thread); the iterative variant is clean;
# a program's own SIGSEGV handler on its own alternate stack still runs.
. "$(dirname "$0")/lib.sh"

DEMOS=$TOP/demos

# overflow_check JSON PYTHON-EXPR: EXPR over the stack-overflow finding `f`.
overflow_check() {
	json_check "$1" "[f for f in j[\"findings\"] if f[\"kind\"] == \"stack-overflow\"] and (lambda f: $2)([f for f in j[\"findings\"] if f[\"kind\"] == \"stack-overflow\"][0])"
}

cat >deep.c <<'EOF'
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#pragma GCC diagnostic ignored "-Winfinite-recursion"
/* Two functions that call each other, in a thread with a 256 KiB stack. */
__attribute__((noinline)) static int ping(int n);
__attribute__((noinline)) static int pong(int n)
{
	volatile char pad[100];
	memset((char *)pad, n, sizeof pad);
	return ping(n + 1) + pad[3];
}
__attribute__((noinline)) static int ping(int n)
{
	volatile char pad[40];
	memset((char *)pad, n, sizeof pad);
	return pong(n + 1) + pad[5];
}
static int own_stack;
static void *run(void *a)
{
	if (own_stack) { /* the thread's own alternate stack */
		stack_t ss = { .ss_sp = malloc(1 << 16), .ss_size = 1 << 16 };
		sigaltstack(&ss, NULL);
	}
	return (void *)(long)ping((int)(long)a);
}
static void *quiet(void *a) { return a; }
static void own(int sig) { (void)sig; write(1, "own handler ran\n", 16); _exit(3); }
int main(int argc, char **argv)
{
	if (argc > 1) { /* the program's own handler, on an alternate stack */
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = own;
		sa.sa_flags = SA_ONSTACK;
		sigaction(SIGSEGV, &sa, NULL);
		own_stack = argc > 2;
	}
	pthread_attr_t at;
	pthread_t t;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 * 1024);
	if (getenv("DEEP_FIRST")) { /* a thread before, on the same stack */
		pthread_create(&t, &at, quiet, NULL);
		pthread_join(t, NULL);
	}
	pthread_create(&t, &at, run, NULL);
	pthread_join(t, NULL);
	return 0;
}
EOF
gcc -std=gnu11 -O1 -g -pthread -o "$TEST_DIR/deep" deep.c ||
	{ echo "Bail out! cannot build the test program"; exit 1; }

test_expect 'recursion: status 139 with and without libspy' '
	prc=0 trc=0 &&
	{ "$DEMOS/recursion" >plain.out 2>/dev/null || prc=$?; } &&
	{ SPY_OPTIONS=out=rec.log traced "$DEMOS/recursion" >traced.out 2>/dev/null || trc=$?; } &&
	say "status $prc plain, $trc traced" &&
	test $prc = 139 && test $trc = 139 && cmp plain.out traced.out
'

test_expect 'recursion: stack-overflow names count_down, the depth, the frame size and ulimit -s' '
	{ SPY_OPTIONS=out=rec.log traced "$DEMOS/recursion" >/dev/null 2>&1 || true; } &&
	report_json rec.log rec.log.r.json &&
	limit=$(( $(ulimit -s) * 1024 )) &&
	overflow_check rec.log.r.json "f[\"details\"][\"repeating\"] == \"count_down\" and f[\"details\"][\"repeats\"] > 1000 and f[\"details\"][\"stack_limit\"] == $limit and \"ulimit -s\" in f[\"details\"][\"limit_from\"]" &&
	overflow_check rec.log.r.json "256 < f[\"details\"][\"bytes_per_frame\"] < 512 and abs(f[\"details\"][\"depth\"] * f[\"details\"][\"bytes_per_frame\"] - $limit) < $limit / 10" &&
	overflow_check rec.log.r.json "f[\"stacks\"][0][\"frames\"][0][\"function\"] == \"count_down\" and f[\"stacks\"][0][\"frames\"][0][\"file\"].endswith(\"recursion.c\")" &&
	overflow_check rec.log.r.json "\"main\" in [fr[\"function\"] for fr in f[\"stacks\"][1][\"frames\"]]" &&
	"$ANALYZE" report rec.log >rec.txt; test $? = 1 &&
	grep "count_down × [0-9,]*, [0-9]* B a call" rec.txt
'

test_expect 'recursion under ulimit -s 2048: the limit follows' '
	{ (ulimit -s 2048 && SPY_OPTIONS=out=small.log traced "$DEMOS/recursion" >/dev/null 2>&1) || true; } &&
	report_json small.log small.log.r.json &&
	overflow_check small.log.r.json "f[\"details\"][\"stack_limit\"] == 2048 * 1024"
'

test_expect 'recursion_fixed: no stack-overflow, status 0' '
	SPY_OPTIONS=out=fx.log traced "$DEMOS/recursion_fixed" >/dev/null &&
	report_json fx.log fx.log.r.json &&
	json_check fx.log.r.json "\"stack-overflow\" not in [f[\"kind\"] for f in j[\"findings\"]]"
'

test_expect 'a thread with a 256 KiB stack: ping -> pong, limit from its attributes' '
	trc=0 &&
	{ SPY_OPTIONS=out=deep.log traced "$TEST_DIR/deep" >/dev/null 2>&1 || trc=$?; } &&
	test $trc = 139 &&
	report_json deep.log deep.log.r.json &&
	overflow_check deep.log.r.json "f[\"details\"][\"stack_limit\"] == 256 * 1024 and \"attributes\" in f[\"details\"][\"limit_from\"] and f[\"details\"][\"cycle_frames\"] == 2" &&
	overflow_check deep.log.r.json "set(f[\"details\"][\"repeating\"].split(\" -> \")) == {\"ping\", \"pong\"} and f[\"details\"][\"thread\"] != j[\"process\"][\"pid\"]"
'

test_expect 'a thread on the stack an ended thread left (its alternate stack passed on): the overflow still found' '
	trc=0 &&
	{ DEEP_FIRST=1 SPY_OPTIONS=out=deep.log traced "$TEST_DIR/deep" >/dev/null 2>&1 || trc=$?; } &&
	test $trc = 139 &&
	report_json deep.log deep.log.r.json &&
	overflow_check deep.log.r.json "set(f[\"details\"][\"repeating\"].split(\" -> \")) == {\"ping\", \"pong\"} and f[\"details\"][\"thread\"] != j[\"process\"][\"pid\"]"
'

test_expect 'the program'\''s own SIGSEGV handler still runs on overflow' '
	prc=0 trc=0 &&
	{ "$TEST_DIR/deep" own alt >plain.out 2>/dev/null || prc=$?; } &&
	{ SPY_OPTIONS=out=own.log traced "$TEST_DIR/deep" own alt >traced.out 2>/dev/null || trc=$?; } &&
	say "status $prc plain, $trc traced" &&
	test $prc = 3 && test $trc = 3 && grep -x "own handler ran" traced.out
'

test_expect 'a handler that could not run without libspy'\''s stack does not run with it' '
	prc=0 trc=0 &&
	{ "$TEST_DIR/deep" own >plain.out 2>/dev/null || prc=$?; } &&
	{ SPY_OPTIONS=out=nostack.log traced "$TEST_DIR/deep" own >traced.out 2>/dev/null || trc=$?; } &&
	say "status $prc plain, $trc traced" &&
	test $prc = 139 && test $trc = 139 && cmp plain.out traced.out &&
	report_json nostack.log nostack.log.r.json &&
	overflow_check nostack.log.r.json "f[\"details\"][\"cycle_frames\"] == 2"
'

# A thread on a small stack that allocates, locks and prints: libunwind
# needs several KiB to search unwind tables, and in a PTHREAD_STACK_MIN
# (16 KiB) thread it overflowed inside libspy, whose fault handler then
# waited for libunwind's lock forever. Near the end of a small stack an
# event now keeps only its innermost frame.
cat >"$TEST_DIR/small.c" <<'EOF'
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int dive(int n)
{
	volatile char pad[256];
	memset((char *)pad, n, sizeof pad);
	if (n == 0) {
		char *p = malloc(40);
		pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
		pthread_mutex_lock(&m);
		p[0] = 1;
		int r = p[0];
		pthread_mutex_unlock(&m);
		free(p);
		return r;
	}
	return dive(n - 1) + pad[3] - pad[3];
}
static void *work(void *a)
{
	int max = *(int *)a, ok = 0;
	for (int d = 0; d <= max; d++)
		ok += dive(d);
	printf("%d dives\n", ok);
	return NULL;
}
int main(int argc, char **argv)
{
	size_t size = argc > 2 ? (size_t)atoi(argv[2]) << 10 : PTHREAD_STACK_MIN;
	int max = atoi(argv[1]);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, size);
	pthread_t t;
	if (pthread_create(&t, &at, work, &max))
		return 1;
	pthread_join(t, NULL);
	return 0;
}
EOF

test_expect 'a PTHREAD_STACK_MIN thread that allocates, locks and prints: same output and status as without libspy, no hang' '
	gcc -O1 -g -pthread -o small "$TEST_DIR/small.c" &&
	./small 8 >plain.out &&
	SPY_OPTIONS=out=$PWD/s.log LD_PRELOAD=$LIBSPY timeout 60 ./small 8 >out && cmp plain.out out &&
	report_json s.log &&
	json_check s.log.json "not [f for f in j[\"findings\"] if f[\"kind\"] in (\"crash\", \"stack-overflow\")]"
'

test_expect 'a 64 KiB thread recursing to 1 KiB short of where it overflows without libspy, allocating at the bottom: runs through' '
	gcc -O1 -g -pthread -o small "$TEST_DIR/small.c" &&
	max=0 && d=100 &&
	while [ $d -le 400 ] && ./small $d 64 >/dev/null 2>&1; do max=$d; d=$((d + 1)); done &&
	test $max -gt 100 && test $d -le 400 &&
	./small $((max - 4)) 64 >plain.out &&
	SPY_OPTIONS=out=$PWD/d.log LD_PRELOAD=$LIBSPY timeout 60 ./small $((max - 4)) 64 >out && cmp plain.out out
'

# Other stacks than the thread's own, small ones: a coroutine on a malloc'd
# block or on pages of its own (makecontext), a signal handler on an
# alternate stack, each allocating. Unwinding there overflowed an 8 KiB
# coroutine stack inside libspy.
cat >"$TEST_DIR/otherstacks.c" <<'EOF'
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
static ucontext_t main_ctx, co_ctx;
static void co(void)
{
	for (int i = 0; i < 3; i++) {
		char *p = malloc(32 + i);
		snprintf(p, 32, "coroutine step %d", i);
		puts(p);
		free(p);
		swapcontext(&co_ctx, &main_ctx);
	}
}
static volatile int handled;
static void on_usr1(int sig)
{
	char *p = malloc(64 + sig);
	handled = p != NULL;
	free(p);
}
int main(int argc, char **argv)
{
	size_t sz = 8192;
	char *stack;
	if (!strcmp(argv[1], "signal")) {
		stack_t ss = { .ss_sp = malloc(sz), .ss_size = sz };
		sigaltstack(&ss, NULL);
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_usr1;
		sa.sa_flags = SA_ONSTACK;
		sigaction(SIGUSR1, &sa, NULL);
		raise(SIGUSR1);
		printf("handled %d\n", handled);
		return 0;
	}
	if (!strcmp(argv[1], "pages")) {
		char *map = mmap(NULL, sz + 4096, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		mprotect(map, 4096, PROT_NONE);
		stack = map + 4096;
	} else {
		stack = malloc(sz);
	}
	getcontext(&co_ctx);
	co_ctx.uc_stack.ss_sp = stack;
	co_ctx.uc_stack.ss_size = sz;
	co_ctx.uc_link = &main_ctx;
	makecontext(&co_ctx, co, 0);
	for (int i = 0; i < 3; i++) {
		swapcontext(&main_ctx, &co_ctx);
		printf("back in main %d\n", i);
	}
	return 0;
}
EOF

test_expect 'an 8 KiB coroutine stack (malloc'\''d, or pages of its own) and an 8 KiB alternate signal stack, allocating there: same output and status as without libspy' '
	gcc -O1 -g -o otherstacks "$TEST_DIR/otherstacks.c" &&
	for how in heap pages signal; do
		./otherstacks $how >plain.out &&
		SPY_OPTIONS=out=$PWD/$how.log LD_PRELOAD=$LIBSPY timeout 60 ./otherstacks $how >out &&
		cmp plain.out out && report_json $how.log &&
		json_check $how.log.json "not [f for f in j[\"findings\"] if f[\"kind\"] in (\"crash\", \"stack-overflow\")]" ||
		return 1
	done
'

test_done
