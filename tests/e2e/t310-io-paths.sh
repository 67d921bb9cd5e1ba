#!/bin/bash
# t310: every way a program makes write calls is counted and put at the
# program's own line: syscall(SYS_write), fprintf and fputc on unbuffered
# streams (stdio writing from inside libc), threads (totals at thread exit),
# a forked child (its own trace, none of the parent's counts), stdio's
# flush at exit, C++ streams; writes that bypass libc entirely are reported
# as a number by the kernel cross-check; io_patch=0 falls back to the PLT.
. "$(dirname "$0")/lib.sh"

FX=$TOP/tests/e2e/fixtures/io_paths.c
PATHS=$TEST_DIR/io_paths
gcc -std=gnu11 -O0 -g -pthread -o "$PATHS" "$FX" ||
	{ echo "Bail out! cannot build io_paths"; exit 1; }
line_of() { grep -n "$1" "$FX" | head -n 1 | cut -d: -f1; }

# run_paths MODE N [OPTIONS]: io_paths under libspy, traces tr.PID.log.
run_paths() {
	SPY_OPTIONS=out=$PWD/tr.%p.log${3:+:$3} LD_PRELOAD=$LIBSPY "$PATHS" "$1" "$2" >out &&
	grep -qx "$1 $2" out
}

# sc TRACE: `analyze syscalls --json` into TRACE.sc.json (0 or 1).
sc() {
	local rc=0
	"$ANALYZE" syscalls --json "$1" >"$1.sc.json" 2>"$1.sc.err" || rc=$?
	[ "$rc" -le 1 ] || { say "analyze syscalls exited $rc"; cat "$1.sc.err"; return 1; }
}

# only_trace: the one trace of the run, in $T.
only_trace() { set -- tr.*.log && test $# = 1 && T=$1; }

SITE='[s for s in j["sites"] if s["fd_path"] == "/dev/null" and s["calls"] == 3000]'

test_expect 'syscall(SYS_write): counted at its line' '
	run_paths syscallfn 3000 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "len($SITE) == 1 and $SITE[0][\"site\"][\"line\"] == $(line_of SYSCALL-WRITE)" &&
	json_check "$T.sc.json" "j[\"kernel\"][\"bypassed_writes\"] == 0"
'

test_expect 'fprintf on an unbuffered stream: at the fprintf line' '
	run_paths printf 3000 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "len($SITE) == 1 and $SITE[0][\"site\"][\"line\"] == $(line_of PRINTF-WRITE)" &&
	json_check "$T.sc.json" "any(f[\"kind\"] == \"unbuffered-io\" for f in j[\"findings\"])"
'

test_expect 'fputc on stderr: at the fputc line' '
	run_paths stderr 3000 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "len($SITE) == 1 and $SITE[0][\"site\"][\"line\"] == $(line_of STDERR-WRITE)"
'

test_expect 'two threads: their totals add up at one site' '
	run_paths threads 1500 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "len($SITE) == 1 and $SITE[0][\"threads\"] == 2 and $SITE[0][\"site\"][\"line\"] == $(line_of THREAD-WRITE)" &&
	json_check "$T.sc.json" "j[\"kernel\"][\"bypassed_writes\"] == 0"
'

test_expect 'fork: the child counts its own writes, the parent its own' '
	run_paths fork 3000 && set -- tr.*.log && test $# = 2 &&
	sc "$1" && sc "$2" &&
	cat "$1.sc.json" "$2.sc.json" >/dev/null &&
	for t in "$1" "$2"; do
		json_check "$t.sc.json" "len($SITE) == 1 and $SITE[0][\"site\"][\"line\"] in ($(line_of CHILD-WRITE), $(line_of PARENT-WRITE))" &&
		json_check "$t.sc.json" "j[\"kernel\"][\"bypassed_writes\"] == 0" || return 1
	done
'

test_expect 'raw system calls bypass libc and are reported as a number' '
	run_paths raw 3000 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "j[\"kernel\"][\"bypassed_writes\"] == 3000" &&
	json_check "$T.sc.json" "not $SITE" &&
	"$ANALYZE" syscalls "$T" >view.txt; grep -q "3,000 write calls bypassed libc" view.txt
'

test_expect 'raw writes of threads that ended: counted by the cross-check' '
	run_paths rawthreads 1000 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "j[\"kernel\"][\"bypassed_writes\"] == 2000"
'

test_expect 'threads ended, then a fork: the child'"'"'s writes are not the parent'"'"'s' '
	run_paths rawfork 1000 && set -- tr.*.log && test $# = 2 &&
	sc "$1" && sc "$2" &&
	for t in "$1" "$2"; do
		json_check "$t.sc.json" "j[\"kernel\"][\"bypassed_writes\"] in (0, 2000)" || return 1
	done &&
	cat "$1.sc.json" "$2.sc.json" | grep -c "\"bypassed_writes\": 2000" | grep -qx 1
'

test_expect 'threads ended and a child reaped outside fork: no cross-check rather than a wrong one' '
	run_paths rawspawn 1000 && set -- tr.*.log && T=$(grep -l "rawspawn" "$@" | head -n 1) &&
	test -n "$T" && sc "$T" &&
	json_check "$T.sc.json" "j[\"kernel\"] is None"
'

test_expect 'stdio'"'"'s flush at exit is counted after the end of the trace' '
	run_paths exitflush 3000 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "any(s[\"fd_path\"] == \"/dev/null\" and s[\"bytes\"] == 3000 for s in j[\"sites\"])"
'

test_expect 'io_patch=0: PLT calls only, and the trace says so' '
	run_paths printf 3000 io_patch=0 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "j[\"interception\"][\"libc_entries_patched\"] == [] and not $SITE" &&
	json_check "$T.sc.json" "j[\"kernel\"][\"bypassed_writes\"] == 3000"
'

test_expect 'io_every=1: one record per call, the same totals' '
	run_paths syscallfn 3000 io_every=1 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "len($SITE) == 1 and $SITE[0][\"timed_calls\"] == 3000" &&
	"$ANALYZE" summary --json "$T" >sum.json &&
	json_check sum.json "j[\"events\"][\"io-site\"] >= 3000"
'

test_expect 'exec: the calls before it are in the trace of the image it replaced' '
	run_paths exec 3000 && set -- tr.*.log && test $# = 2 &&
	sc "$1" && sc "$2" &&
	cat "$1.sc.json" "$2.sc.json" >/dev/null &&
	{ json_check "$1.sc.json" "len($SITE) == 1 and $SITE[0][\"site\"][\"line\"] == $(line_of LAST-WRITE)" ||
	  json_check "$2.sc.json" "len($SITE) == 1 and $SITE[0][\"site\"][\"line\"] == $(line_of LAST-WRITE)"; }
'

test_expect 'abort: the calls before the fatal signal are in the trace' '
	{ SPY_OPTIONS=out=$PWD/tr.%p.log LD_PRELOAD=$LIBSPY "$PATHS" crash 3000 >out; test $? = 134; } &&
	only_trace && sc "$T" &&
	json_check "$T.sc.json" "len($SITE) == 1 and $SITE[0][\"site\"][\"line\"] == $(line_of LAST-WRITE)"
'

if command -v script >/dev/null; then
	test_expect 'lines on a terminal: only an info finding; to a file: none' '
		script -qec "env SPY_OPTIONS=out=$PWD/tr.%p.log LD_PRELOAD=$LIBSPY $PATHS lines 2000" /dev/null >tty.out &&
		only_trace && sc "$T" &&
		json_check "$T.sc.json" "[(f[\"severity\"], f[\"details\"][\"fd_type\"], f[\"details\"][\"line\"]) for f in j[\"findings\"]] == [(\"info\", \"terminal\", $(line_of LINE-WRITE))]" &&
		rm -f tr.*.log && run_paths lines 2000 && only_trace && sc "$T" &&
		json_check "$T.sc.json" "not j[\"findings\"]"
	'
else
	test_skip 'lines on a terminal: only an info finding; to a file: none' 'no script(1)'
fi

test_expect 'one line writing three files in turn on one descriptor number (closed by close, closefrom, close_range): three rows' '
	run_paths reopen 1500 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "sorted(s[\"fd_path\"].split(\"/\")[-1] for s in j[\"sites\"] if s[\"calls\"] == 1500) == [\"reopen.0\", \"reopen.1\", \"reopen.2\"]" &&
	json_check "$T.sc.json" "len(set(s[\"fd\"] for s in j[\"sites\"] if s[\"calls\"] == 1500)) == 1"
'

# A server's pattern: one descriptor number per connection, reused. A
# site's slot on a number closed since is written out and reused; before,
# the table filled after a few connections and the rest went into one row
# without a site, reads counted as the first call of that row.
test_expect 'connection after connection on one number: every send and recv at its line' '
	run_paths conns 1500 && only_trace && sc "$T" &&
	json_check "$T.sc.json" "not [s for s in j[\"sites\"] if s[\"fd\"] == -1]" &&
	json_check "$T.sc.json" "sum(s[\"calls\"] for s in j[\"sites\"] if s[\"call\"] == \"send\" and s[\"site\"][\"line\"] == $(line_of CONN-SEND)) == 1500" &&
	json_check "$T.sc.json" "sum(s[\"calls\"] for s in j[\"sites\"] if s[\"call\"] == \"recv\" and s[\"site\"][\"line\"] == $(line_of CONN-RECV)) == 1500" &&
	"$ANALYZE" syscalls "$T" >view.txt &&
	grep -q "^\.\.\. 2941 more rows (analyze syscalls --json lists every one)" view.txt &&
	test "$(wc -l <view.txt)" -lt 250
'

test_expect 'output and exit status unchanged for every mode' '
	for m in raw syscallfn printf stderr threads fork rawthreads rawfork rawspawn exitflush exec crash reopen conns; do
		rm -rf plain traced && same_output "$m" "$PATHS" "$m" 500 || return 1
	done
'

if command -v g++ >/dev/null; then
	test_expect 'C++: cout << c << flush flagged at its line, buffered clean' '
		CX=$TOP/tests/e2e/fixtures/io_cout.cpp &&
		g++ -O0 -g -o cout "$CX" &&
		SPY_OPTIONS=out=$PWD/tr.%p.log LD_PRELOAD=$LIBSPY ./cout flushed 2000 >out &&
		only_trace && sc "$T" &&
		json_check "$T.sc.json" "[f[\"details\"][\"line\"] for f in j[\"findings\"] if f[\"kind\"] == \"unbuffered-io\"] == [$(grep -n COUT-FLUSH "$CX" | cut -d: -f1)]" &&
		rm -f tr.*.log &&
		SPY_OPTIONS=out=$PWD/tr.%p.log LD_PRELOAD=$LIBSPY ./cout buffered 2000 >out &&
		only_trace && sc "$T" &&
		json_check "$T.sc.json" "not j[\"findings\"]"
	'
else
	test_skip 'C++: cout << c << flush flagged at its line, buffered clean' 'no g++'
fi

test_done
