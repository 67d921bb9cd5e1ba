#!/bin/bash
# t165: a program that confines its own system calls (seccomp: a filter
# that kills on anything else, or strict mode) and then keeps working.
# libspy's own system calls after that (a new window of the trace, a
# thread's end, the exit scan) would kill it: the trace ends where the
# program confines itself, with a note, and the program runs on as it
# would without libspy.
. "$(dirname "$0")/lib.sh"

SC=$TEST_DIR/seccomp
gcc -std=gnu11 -O0 -g -pthread -o "$SC" "$FIXTURES/seccomp.c" || exit 1

# sc MODE: runs the fixture plain and traced, compares; t.log is the trace.
sc() {
	same_output "seccomp $1" "$SC" "$1" &&
	grep -qx "ok $1" traced.out &&
	set -- traced/trace.seccomp.*.log &&
	test $# -eq 1 && cp "$1" t.log
}

# noted_in TRACE: the trace reads, and says where it ended and why.
noted_in() {
	summary_json "$1" &&
	json_check "$1.json" "any('seccomp' in n['text'] for n in j['notes'])" &&
	json_check "$1.json" "j['calls']['malloc'] >= 1"
}

noted() { noted_in t.log; }

test_expect 'a seccomp filter through prctl: same output and status, a trace with a note' '
	sc prctl && noted
'

test_expect 'a filter on every thread through syscall(), threads before and after it' '
	sc syscall && noted
'

test_expect 'strict mode (no time stamp counter either): same output and status' '
	sc strict && noted
'

# Threads at work inside libspy when the filter goes in on all of them: it
# waits for them to leave (a window of the trace being mapped, a thread
# starting or ending). Without that wait about one run in three died.
test_expect 'a filter on every thread while others allocate and start threads: alive, run after run' '
	for i in $(seq 1 20); do
		rm -f traced/* && sc busy && noted || return 1
	done
'

# Such a wait is the program's own call made inside one of libspy's hooks:
# the filter does not wait for it, and the thread, back from it, makes no
# system call of libspy's (it used to, and died of the filter there).
test_expect 'threads waiting in a read, for a condition, for a mutex do not hold the filter back' '
	sc blocked && noted
'

# Guard mode's blocks are libspy's own: once confined, a free leaves one as
# it is (giving it back takes system calls), and a realloc moves it to the
# real allocator, which knew nothing of it (glibc's realloc aborted).
test_expect 'guard mode: blocks reallocated and freed after the filter' '
	cat >guarded.c <<-EOF &&
	#include <linux/filter.h>
	#include <linux/seccomp.h>
	#include <stdio.h>
	#include <stdlib.h>
	#include <string.h>
	#include <sys/prctl.h>
	#include <unistd.h>
	int main(void)
	{
		struct sock_filter f[] = {
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
		struct sock_fprog prog = { 1, f };
		char *a = malloc(100), *b = malloc(50), *c = malloc(10);
		strcpy(a, "kept");
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
			return 2;
		a = realloc(a, 5000);
		free(b);
		printf("%s\n", realloc(c, 0) ? "not freed" : a);
		free(a);
		return 0;
	}
	EOF
	gcc -o guarded guarded.c &&
	SPY_OPTIONS=guard=1 same_output guarded "$PWD/guarded" &&
	grep -qx kept traced.out
'

test_expect 'probes that install nothing leave tracing on' '
	cat >probe.c <<-EOF &&
	#include <linux/seccomp.h>
	#include <stdio.h>
	#include <stdlib.h>
	#include <sys/syscall.h>
	#include <unistd.h>
	int main(void)
	{
		/* as libseccomp probes the kernel: bad flags, a null filter */
		syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 1, NULL);
		syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, NULL);
		free(malloc(10));
		puts("probed");
		return 0;
	}
	EOF
	gcc -o probe probe.c &&
	SPY_OPTIONS=out=p.log LD_PRELOAD=$LIBSPY ./probe >out &&
	grep -qx probed out &&
	summary_json p.log &&
	json_check p.log.json "not j[\"notes\"] and j[\"calls\"][\"malloc\"] >= 1" &&
	json_check p.log.json "j[\"process\"][\"exit\"][\"status\"] == 0"
'

# A program that starts under a filter: a sandbox (fixtures/sandbox.c)
# installs it and execs the program, with libspy preloaded into the
# program alone. The filter covers calls
# libspy makes and the program does not, so any of libspy's own would be
# refused, or end the process.
SB=$TEST_DIR/sandbox
gcc -std=gnu11 -O0 -g -pthread -o "$SB" "$FIXTURES/sandbox.c" || exit 1
OWN=getpid,gettid,getppid,sigaltstack,rt_sigaction+segv,pipe2,fcntl,prctl
OWN=$OWN,timer_create,readlink,readlinkat,fallocate,getrusage,mincore
OWN=$OWN,getdents64,tgkill,lseek,sched_yield,openat+creat,mmap+shared

# sandboxed ACTION CALLS [OPTIONS]: the program under the filter, plain and
# with libspy; the same stdout and status (5), and on stderr the plain
# run's lines, with libspy's (spy: ...) in traced.err besides.
sandboxed() {
	local prc=0 trc=0
	"$SB" "$1" "$2" "$SB" work >plain.out 2>plain.err || prc=$?
	"$SB" -e LD_PRELOAD="$LIBSPY" -e SPY_OPTIONS="out=$PWD/t.%p.log${3:+:$3}" \
		"$1" "$2" "$SB" work >traced.out 2>traced.err || trc=$?
	say "status $prc plain, $trc traced; stderr traced:"
	cat traced.err
	test $prc -eq 5 && test $trc -eq 5 && cmp plain.out traced.out &&
	grep -v "^spy: " traced.err | cmp - plain.err
}

# untraced: the one note, and no trace at all.
untraced() {
	test "$(grep -c "^spy: " traced.err)" = 1 &&
	grep -q "^spy: the program starts under a seccomp filter" traced.err &&
	! ls t.*.log
}

test_expect 'started under a filter that refuses (EPERM) what libspy calls: untraced, one note, same output' '
	sandboxed errno "$OWN" && untraced &&
	sandboxed errno openat+creat && untraced &&
	sandboxed errno mmap+shared && untraced
'

test_expect 'started under a filter that kills on what libspy calls: untraced, alive' '
	sandboxed kill "$OWN" && untraced &&
	sandboxed kill sigaltstack && untraced &&
	sandboxed kill rt_sigaction+segv && untraced
'

test_expect 'started under a filter that traps (SIGSYS) on what libspy calls: untraced, alive' '
	sandboxed trap "$OWN" && untraced &&
	sandboxed trap gettid && untraced
'

test_expect 'quiet=1 leaves out the note' '
	sandboxed kill "$OWN" quiet=1 &&
	! grep -q "^spy: " traced.err && ! ls t.*.log
'

test_expect 'on_seccomp=trace traces under a filter that allows what libspy calls' '
	sandboxed errno timer_create on_seccomp=trace &&
	! grep -q "^spy: " traced.err &&
	set -- t.*.log && test $# -eq 1 &&
	summary_json "$1" &&
	json_check "$1.json" "j[\"calls\"][\"malloc\"] >= 60000" &&
	json_check "$1.json" "j[\"process\"][\"exit\"][\"status\"] == 5"
'

test_expect 'spy run by a sandbox: the status of the program, and why no trace' '
	"$SB" work >plain.out 2>/dev/null;
	"$SB" errno sigaltstack "$SPY" -o "$PWD/r.log" "$SB" work >out 2>err; rc=$? &&
	cat err && test $rc = 5 && cmp out plain.out &&
	grep -q "^spy: the program starts under a seccomp filter" err &&
	grep -q "^spy: no trace was written to .*: the program started under a seccomp filter" err &&
	! ls r*.log
'

test_expect 'a traced sandbox: its trace ends at the filter, the program it runs is untraced' '
	"$SB" kill "$OWN" "$SB" work >plain.out 2>plain.err; prc=$? &&
	SPY_OPTIONS=out=$PWD/t.%p.log LD_PRELOAD=$LIBSPY \
		"$SB" kill "$OWN" "$SB" work >traced.out 2>traced.err; trc=$? &&
	say "status $prc plain, $trc traced" && cat traced.err &&
	test $prc -eq 5 && test $trc -eq 5 && cmp plain.out traced.out &&
	test "$(grep -c "^spy: " traced.err)" = 1 &&
	grep -q "^spy: the program starts under a seccomp filter" traced.err &&
	set -- t.*.log && test $# -eq 1 && summary_json "$1" &&
	json_check "$1.json" "any(\"seccomp\" in n[\"text\"] for n in j[\"notes\"])"
'

# Without /proc the kernel is asked instead (PR_GET_SECCOMP, which a
# filter that kills on prctl turns into the end: not in this list): a
# mount namespace of the test's own hides /proc.
if unshare -m --propagation private true 2>/dev/null; then
	test_expect 'without /proc: the filter is still seen' '
		cat >noproc.sh <<-EOF &&
		mount -t tmpfs none /proc || exit 1
		"$SB" -e LD_PRELOAD="$LIBSPY" -e SPY_OPTIONS=out=$PWD/t.%p.log \\
			kill "${OWN/prctl,/}" "$SB" work >traced.out 2>traced.err
		echo \$? >traced.rc
		LD_PRELOAD="$LIBSPY" SPY_OPTIONS=out=$PWD/u.%p.log \\
			"$SB" work >free.out 2>free.err
		echo \$? >free.rc
		EOF
		unshare -m --propagation private sh noproc.sh &&
		cat traced.err &&
		test "$(cat traced.rc)" = 5 && test "$(cat free.rc)" = 5 &&
		"$SB" work >plain.out 2>plain.err || test $? = 5 &&
		cmp plain.out traced.out && cmp plain.out free.out &&
		untraced && cmp plain.err free.err &&
		set -- u.*.log && test $# -eq 1 && summary_ok "$1"
	'
else
	test_skip 'without /proc: the filter is still seen' 'no mount namespace here'
fi

test_done
