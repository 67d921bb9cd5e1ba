#!/bin/bash
# t320: syscalls=all counts every system call of every thread by name
# (Syscall User Dispatch), including raw syscall instructions that libc
# never sees, and never breaks the program: signals all blocked, a SIGSYS
# handler of its own, a shell pipeline (dash blocks every signal in its
# handlers), fork.
. "$(dirname "$0")/lib.sh"

FX=$TOP/tests/e2e/fixtures/io_paths.c
PATHS=$TEST_DIR/io_paths
gcc -std=gnu11 -O0 -g -pthread -o "$PATHS" "$FX" ||
	{ echo "Bail out! cannot build io_paths"; exit 1; }

# all MODE N: io_paths under syscalls=all; its trace(s) are tr.PID.log.
all() {
	SPY_OPTIONS=out=$PWD/tr.%p.log:syscalls=all LD_PRELOAD=$LIBSPY "$PATHS" "$1" "$2" >out &&
	grep -qx "$1 $2" out
}
sc() {
	local rc=0
	"$ANALYZE" syscalls --json "$1" >"$1.sc.json" 2>"$1.sc.err" || rc=$?
	[ "$rc" -le 1 ] || { say "analyze syscalls exited $rc"; cat "$1.sc.err"; return 1; }
}
only_trace() { set -- tr.*.log && test $# = 1 && T=$1; }
CALLS='{s["name"]: s["calls"] for s in j["syscalls"]}'

# Whether this kernel has Syscall User Dispatch at all.
probe() {
	SPY_OPTIONS=out=$TEST_DIR/probe.log:syscalls=all LD_PRELOAD=$LIBSPY /bin/true &&
	"$ANALYZE" syscalls --json "$TEST_DIR/probe.log" | grep -q '"all_syscalls": true'
}

if ! probe; then
	test_skip 'syscalls=all' 'the kernel has no Syscall User Dispatch'
	test_done
	exit
fi

test_expect 'raw syscall instructions are counted by name' '
	all raw 3000 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "j[\"interception\"][\"all_syscalls\"]" &&
	json_check "$T.sc.json" "$CALLS.get(\"write\", 0) >= 3000 and $CALLS.get(\"openat\", 0) >= 1"
'

test_expect 'every thread is armed: both threads'"'"' writes and their clone calls' '
	all threads 2000 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "$CALLS.get(\"write\", 0) >= 4000" &&
	json_check "$T.sc.json" "$CALLS.get(\"clone3\", 0) + $CALLS.get(\"clone\", 0) >= 2"
'

test_expect 'every signal blocked: SIGSYS stays deliverable, the program finishes' '
	all blockall 2000 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "$CALLS.get(\"write\", 0) >= 2000"
'

test_expect 'a program that sets SIGSYS itself runs on' '
	all sigsys 500 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "$CALLS.get(\"write\", 0) >= 500"
'

test_expect 'fork: the child is armed again and counts its own calls' '
	all fork 1000 && set -- tr.*.log && test $# = 2 &&
	sc "$1" && sc "$2" &&
	json_check "$1.sc.json" "$CALLS.get(\"write\", 0) >= 1000" &&
	json_check "$2.sc.json" "$CALLS.get(\"write\", 0) >= 1000"
'

test_expect 'a shell pipeline and python3 threads: output and status unchanged' '
	SPY_OPTIONS=syscalls=all same_output pipeline sh -c "for i in 1 2 3; do echo \$i | cat; done; exit 3" &&
	rm -rf plain traced &&
	SPY_OPTIONS=syscalls=all same_output python3 python3 -c "import threading; t = threading.Thread(target=print, args=(7,)); t.start(); t.join()"
'

test_expect 'the text view lists every system call by name' '
	all syscallfn 1000 && only_trace &&
	{ "$ANALYZE" syscalls "$T" >view.txt || :; } &&
	grep -q "Every system call" view.txt && grep -Eq "^ +[0-9,]+  write$" view.txt
'

test_done
