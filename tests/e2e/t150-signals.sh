#!/bin/bash
# t150: fatal signals keep their exit status under libspy and are recorded;
# a SIGKILLed program, or one ended by a raw exit_group, leaves a trace the
# analyzer still reads; the
# program's own signal handler still runs.
. "$(dirname "$0")/lib.sh"

build_victim || { echo "Bail out! cannot build the victim program"; exit 1; }
export SPY_OPTIONS="out=$TEST_DIR/tr.%e.%p.log"

# run_victim ACTION EXPECTED-STATUS: plain and traced runs end alike.
run_victim() {
	local prc=0 trc=0
	"$VICTIM" "$1" >plain.out 2>/dev/null || prc=$?
	LD_PRELOAD=$LIBSPY "$VICTIM" "$1" >out 2>err & pid=$!
	wait $pid || trc=$?
	say "$1: status $prc plain, $trc traced (pid $pid)"
	test $prc -eq "$2" && test $trc -eq "$2" &&
	cmp plain.out out && trace=$TEST_DIR/tr.victim.$pid.log
}

test_expect 'a clean exit records status 0, no signal, not truncated' '
	run_victim say 0 &&
	summary_json "$trace" &&
	json_check "$trace.json" "j[\"process\"][\"exit\"][\"signal\"] is None and j[\"process\"][\"exit\"][\"status\"] == 0 and j[\"process\"][\"truncated\"] is False"
'

test_expect 'SIGSEGV: the shell sees 139 and the trace records signal 11' '
	run_victim segv 139 &&
	summary_json "$trace" &&
	json_check "$trace.json" "j[\"process\"][\"exit\"][\"signal\"] == 11"
'

test_expect 'abort(): the shell sees 134 and the trace records signal 6' '
	run_victim abort 134 &&
	summary_json "$trace" &&
	json_check "$trace.json" "j[\"process\"][\"exit\"][\"signal\"] == 6"
'

test_expect 'SIGKILL: the trace still reads and is reported truncated' '
	run_victim kill9 137 &&
	summary_ok "$trace" &&
	summary_json "$trace" &&
	json_check "$trace.json" "j[\"process\"][\"truncated\"] is True"
'

test_expect 'exit_group called directly (as Go does): the note names that case' '
	run_victim rawexit 4 &&
	summary_json "$trace" &&
	json_check "$trace.json" "j[\"process\"][\"truncated\"] is True" &&
	"$ANALYZE" summary "$trace" >sum.txt &&
	tr -s " \n" "  " <sum.txt | grep -q "ended by an exit system call of its own as Go programs do"
'

test_expect 'the program'\''s own SIGSEGV handler still runs' '
	run_victim handler 7 &&
	grep -x "own handler ran" out &&
	summary_json "$trace" &&
	json_check "$trace.json" "j[\"process\"][\"exit\"][\"status\"] == 7 and j[\"process\"][\"exit\"][\"signal\"] is None"
'

test_expect 'yes | head -n 1: yes dies of SIGPIPE (141) and its trace says so' '
	{ LD_PRELOAD=$LIBSPY SPY_OPTIONS=out=$PWD/yes.log yes; echo $? >yes.status; } |
		head -n 1 >/dev/null &&
	say "status $(cat yes.status)" && test "$(cat yes.status)" -eq 141 &&
	summary_json yes.log &&
	json_check yes.log.json "j[\"process\"][\"exit\"][\"signal\"] == 13 and j[\"process\"][\"truncated\"] is False"
'

test_expect 'perl killed by its own alarm: 142, and the trace says SIGALRM' '
	rc=0 && LD_PRELOAD=$LIBSPY SPY_OPTIONS=out=$PWD/alrm.log \
		perl -e "alarm 1; my @a = map { [\$_] } 1..1000; sleep 5" || rc=$? &&
	say "status $rc" && test "$rc" -eq 142 &&
	summary_json alrm.log &&
	json_check alrm.log.json "j[\"process\"][\"exit\"][\"signal\"] == 14"
'

test_expect 'SIGTERM from outside: status 143 and the trace reads' '
	LD_PRELOAD=$LIBSPY "$VICTIM" trapterm ready >out 2>err & pid=$! &&
	for i in $(seq 100); do test -f ready && break; sleep 0.1; done &&
	kill -TERM $pid && rc=0 && wait $pid || rc=$? &&
	test $rc -eq 5 && grep -x "got TERM" out &&
	summary_ok "$TEST_DIR/tr.victim.$pid.log"
'

test_expect 'spy keeps 139 for a SIGSEGV and 134 for abort' '
	rc=0 && SPY_OPTIONS= "$SPY" --no-report "$VICTIM" segv 2>err || rc=$? &&
	test $rc -eq 139 &&
	rc=0 && SPY_OPTIONS= "$SPY" --no-report "$VICTIM" abort 2>err || rc=$? &&
	test $rc -eq 134
'

cat >"$TEST_DIR/masks.c" <<'CEOF'
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Blocks SIGUSR2, raises SIGUSR1 while blocked, then allocates from many
 * call sites (libspy unwinds each new one), and shows the mask and the
 * pending set before and after unblocking: they must read the same with
 * and without libspy. */
static volatile sig_atomic_t got;
static void on_usr1(int sig) { (void)sig; got++; }

#define SITE(n) static void *site##n(size_t k) { return malloc(k + n); }
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)
static void *(*sites[])(size_t) = { site0, site1, site2, site3, site4, site5, site6, site7 };

static void show(const char *when)
{
	sigset_t m, p;
	sigprocmask(SIG_BLOCK, NULL, &m);
	sigpending(&p);
	printf("%s: usr1 blocked %d pending %d, usr2 blocked %d, got %d\n", when,
	       sigismember(&m, SIGUSR1), sigismember(&p, SIGUSR1),
	       sigismember(&m, SIGUSR2), (int)got);
}

int main(void)
{
	sigset_t s, old;
	signal(SIGUSR1, on_usr1);
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &s, &old) != 0 || sigismember(&old, SIGUSR1))
		return 1;
	raise(SIGUSR1);
	for (int i = 0; i < 4000; i++)
		free(sites[i % 8](i % 100));
	show("blocked");
	sigdelset(&s, SIGUSR2);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	show("unblocked");
	return sigprocmask(99, &s, NULL) == -1 ? 0 : 2; /* EINVAL, as plain */
}
CEOF

test_expect 'the program'\''s signal mask is its own: blocked, pending and unblocked as without libspy' '
	gcc -O0 -g -o masks "$TEST_DIR/masks.c" &&
	./masks >plain.out &&
	grep -x "blocked: usr1 blocked 1 pending 1, usr2 blocked 1, got 0" plain.out &&
	LD_PRELOAD=$LIBSPY ./masks >traced.out &&
	cmp plain.out traced.out
'

# A timer whose handler jumps back to the main loop (unless it caught the
# program inside the C library): a jump out of one of libspy's hooks left
# its re-entry guard taken, and the thread recorded nothing more (253
# of 2,000,000 mallocs, in a trace that read as complete).
cat >"$TEST_DIR/ljmp.c" <<'CEOF'
#define _GNU_SOURCE
#include <link.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <ucontext.h>
/* A timer whose handler jumps back to the main loop, unless it caught the
 * program inside the C library (a jump out of malloc itself would break
 * the heap, with or without libspy). */
static sigjmp_buf env;
static volatile long jumps;
static uintptr_t libc_lo, libc_hi;
static int find_libc(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size; (void)data;
	if (!info->dlpi_name || !strstr(info->dlpi_name, "libc.so"))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_LOAD && (info->dlpi_phdr[i].p_flags & PF_X)) {
			libc_lo = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
			libc_hi = libc_lo + info->dlpi_phdr[i].p_memsz;
		}
	return 1;
}
static void on_alarm(int sig, siginfo_t *si, void *ctx)
{
	(void)sig; (void)si;
	uintptr_t pc = (uintptr_t)((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP];
	if (pc >= libc_lo && pc < libc_hi)
		return;
	jumps++;
	siglongjmp(env, 1);
}
int main(void)
{
	dl_iterate_phdr(find_libc, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_alarm;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 500 }, { 0, 500 } };
	setitimer(ITIMER_REAL, &it, NULL);
	volatile long n = 0;
	sigsetjmp(env, 1);
	while (n < 1000000) {
		void *p = malloc(n % 500 + 1);
		free(p);
		n++;
	}
	it.it_value.tv_usec = it.it_interval.tv_usec = 0;
	setitimer(ITIMER_REAL, &it, NULL);
	printf("done\n");
	return 0;
}
CEOF

test_expect 'longjmp out of a timer handler, over and over: same output; every malloc still recorded, and a note says hooks were cut short' '
	gcc -O1 -g -o ljmp "$TEST_DIR/ljmp.c" &&
	test "$(./ljmp)" = done &&
	for run in 1 2 3; do
		rm -f j.log &&
		SPY_OPTIONS=out=$PWD/j.log LD_PRELOAD=$LIBSPY ./ljmp >out && test "$(cat out)" = done &&
		"$ANALYZE" summary --json j.log >s.json &&
		json_check s.json "j[\"calls\"][\"malloc\"] >= 1000000" || return 1
		# the timer must have cut a hook short at least once (it does
		# in nearly every run: the loop spends half its time in libspy)
		{ "$ANALYZE" report j.log >r.txt || test $? = 1; } &&
		grep -q "long jump" r.txt && return 0
	done
	return 1
'


# A signal handler that ends the process with _exit while libspy finishes
# the trace at exit (PostgreSQL's backends on SIGQUIT): the trace ends
# with that exit, not cut short. The leak scan of a million blocks takes
# far longer than the timer.
cat >"$TEST_DIR/quickdie.c" <<'CEOF'
#include <signal.h>
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

static void quickdie(int sig)
{
	(void)sig;
	_exit(2);
}

int main(void)
{
	void **keep = malloc(sizeof(void *) * 1000000);
	for (int i = 0; i < 1000000; i++)
		keep[i] = malloc(32);
	signal(SIGALRM, quickdie);
	struct itimerval it = { .it_value = { .tv_usec = 5000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	return 0;
}
CEOF

test_expect 'a handler that _exits while the trace is finished at exit: the trace records that exit' '
	gcc -O1 -o quickdie "$TEST_DIR/quickdie.c" &&
	rc=0 && SPY_OPTIONS=out=$PWD/q.log LD_PRELOAD=$LIBSPY ./quickdie || rc=$? &&
	test $rc -eq 2 &&
	summary_json q.log &&
	json_check q.log.json "j[\"process\"][\"exit\"][\"status\"] == 2 and j[\"process\"][\"truncated\"] is False"
'

# sigset, sysv_signal, bsd_signal, ssignal, sigignore, siginterrupt and
# __sigaction reach the kernel without sigaction's symbol: the program
# must read back what it set, and libspy must still see the signal that
# ends it.
test_expect 'the C library'\''s other ways to set a handler read back as without libspy' '
	gcc -O1 -o sigfuncs "$FIXTURES/sigfuncs.c" &&
	same_output sigfuncs "$PWD/sigfuncs" &&
	grep -x "after one delivery: default, restart 0, resethand 1" traced.out &&
	summary_json traced/trace.sigfuncs.*.log &&
	json_check traced/trace.sigfuncs.*.log.json "j[\"process\"][\"exit\"][\"signal\"] == 15"
'

test_done
