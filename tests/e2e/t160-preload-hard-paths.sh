#!/bin/bash
# t160: the paths that break interposers: every member of the malloc family,
# malloc inside a signal handler, fork while another thread allocates, many
# short-lived threads, a failed exec, dlopen, a program that closes every
# descriptor and reuses the numbers, and a trace cut to nothing while the
# program runs. Each must leave the program's behaviour unchanged
# and a trace that reads and adds up.
. "$(dirname "$0")/lib.sh"

HP=$TEST_DIR/hardpaths
gcc -std=gnu11 -O0 -g -pthread -o "$HP" "$FIXTURES/hardpaths.c" -ldl || exit 1

# hp MODE...: runs the fixture traced into ./t.log and plain, compares.
hp() {
	same_output "hardpaths $*" "$HP" "$@" &&
	set -- traced/trace.hardpaths.*.log &&
	if test $# -eq 1; then cp "$1" t.log; fi
}

test_expect 'every member of the malloc family is recorded by name' '
	hp families &&
	summary_json t.log &&
	json_check t.log.json "all(j[\"calls\"].get(f) == 1 for f in (\"posix_memalign\", \"aligned_alloc\", \"memalign\", \"valloc\", \"pvalloc\", \"reallocarray\"))" &&
	json_check t.log.json "j[\"calls\"][\"calloc\"] >= 1 and j[\"calls\"][\"realloc\"] >= 1" &&
	json_check t.log.json "j[\"calls\"][\"free\"] >= 9"
'

test_expect 'the block left at exit is the one the program leaked' '
	hp families &&
	"$ANALYZE" dump t.log >dump.txt &&
	grep -q "malloc 0x[0-9a-f]* size 12345" dump.txt &&
	summary_json t.log &&
	json_check t.log.json "j[\"heap\"][\"live_bytes\"] >= 12345"
'

test_expect 'a stack names the function and line that allocated' '
	hp families &&
	"$ANALYZE" dump t.log >dump.txt &&
	grep -A2 "aligned_alloc 0x" dump.txt | grep -q "families at hardpaths.c:[0-9]"
'

test_expect 'malloc inside a signal handler, hundreds of times' '
	hp signal-malloc &&
	summary_json t.log &&
	json_check t.log.json "j[\"calls\"][\"malloc\"] > 500 and j[\"calls\"][\"malloc\"] - j[\"calls\"][\"free\"] < 10" &&
	json_check t.log.json "j[\"trace\"][\"complete\"]"
'

# cause_of TRACE: prints the cause recorded in TRACE (start, fork, exec).
cause_of() {
	"$ANALYZE" summary --json "$1" >"$1.json" &&
	python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"process\"][\"cause\"])" "$1.json"
}

test_expect 'fork while another thread allocates: every child has its own trace' '
	hp fork-busy &&
	n=$(ls traced/trace.hardpaths.*.log | wc -l) &&
	say "$n traces" && test "$n" -eq 21 &&
	parent= &&
	for t in traced/*.log; do
		c=$(cause_of "$t") || return 1
		if test "$c" = start; then parent=$t; fi
	done &&
	say "parent trace: $parent" && test -n "$parent" &&
	for t in traced/*.log; do
		test "$t" = "$parent" ||
		json_check "$t.json" "j[\"process\"][\"cause\"] == \"fork\" and j[\"process\"][\"parent_trace\"].endswith(\"/$(basename "$parent")\") and j[\"calls\"].get(\"malloc\", 0) >= 1" || return 1
	done
'

test_expect '300 short-lived threads are all seen' '
	hp threads &&
	summary_json t.log &&
	json_check t.log.json "len(j[\"threads\"]) == 301" &&
	json_check t.log.json "j[\"calls\"][\"malloc\"] >= 30000"
'

test_expect 'a failed exec leaves tracing on' '
	hp exec-fail &&
	"$ANALYZE" dump t.log >dump.txt &&
	grep -q "exec " dump.txt &&
	grep -q "malloc 0x[0-9a-f]* size 777" dump.txt &&
	summary_json t.log &&
	json_check t.log.json "j[\"process\"][\"exit\"][\"status\"] == 0"
'

test_expect 'a library loaded with dlopen is in the module map' '
	hp dlopen &&
	"$ANALYZE" dump t.log >dump.txt &&
	grep -q "dlopen" dump.txt &&
	"$ANALYZE" dump --json t.log >dump.json &&
	json_check dump.json "any(e[\"kind\"] == \"module\" and e[\"snapshot\"] > 1 and (\"/libz.so\" in e[\"path\"] or \"/libm.so\" in e[\"path\"]) for e in j)" &&
	json_check dump.json "not any(e[\"kind\"] == \"module\" and e[\"path\"].endswith(\".log\") for e in j)"
'

test_expect 'the first descriptor a program opens is 3, as without libspy, under ulimit -n 256 too (the unwinder'\''s pipe is out of the way)' '
	hp firstfd && grep -qx "open gave 3" plain.out &&
	rm -rf plain traced && (ulimit -n 256 && hp firstfd) &&
	grep -qx "open gave 3" plain.out
'

test_expect 'the program sees its own alternate signal stack, not libspy'\''s, in the main thread and a new one' '
	hp altstack && grep -qx "main at start: none, 0 bytes" plain.out &&
	grep -qx "thread after setting one: set, 65536 bytes" plain.out
'

# fork_child_json: of the traces in traced/, the forked child's summary
# in $child and the other's in $parent.
fork_child_json() {
	local t
	child= parent=
	for t in traced/trace.hardpaths.*.log; do
		summary_json "$t" || return 1
		if grep -q '"cause": *"fork"' "$t.json"; then
			child=$t.json
		else
			parent=$t.json
		fi
	done
	test -n "$child" && test -n "$parent"
}

test_expect 'a program that closes every descriptor and takes the trace'\''s number for its own file: the file is untouched, and the trace goes on' '
	hp closeall &&
	grep -qx "own.txt: 13 bytes: parent" plain.out &&
	! grep -q "spy:" traced.err && fork_child_json &&
	json_check "$parent" "j[\"calls\"][\"malloc\"] >= 600000 and not j[\"process\"][\"truncated\"]" &&
	json_check "$child" "j[\"calls\"][\"malloc\"] >= 300000"
'

# long_run MS TRACE: starts the fixture allocating for MS milliseconds,
# traced into TRACE, in the background; its pid is in $pid.
long_run() {
	SPY_OPTIONS=out=$PWD/$2 LD_PRELOAD=$LIBSPY "$HP" long "$1" >out.txt 2>err.txt &
	pid=$!
}

test_expect 'a trace truncated while the program runs does not harm it' '
	{ expected=$("$HP" long 100); test $? -eq 7; } &&
	long_run 1500 cut.log &&
	sleep 0.5 && : >cut.log &&
	{ wait $pid; rc=$?; } &&
	say "status $rc" && test "$rc" -eq 7 &&
	test "$(cat out.txt)" = "$expected" &&
	one_line err.txt && grep -q "truncated" err.txt
'

test_expect 'a trace cut and grown back past where libspy writes: still noticed (the header is gone), the program unharmed' '
	{ expected=$("$HP" long 100); test $? -eq 7; } &&
	long_run 1500 grow.log &&
	sleep 0.5 && : >grow.log && truncate -s 256M grow.log &&
	{ wait $pid; rc=$?; } &&
	say "status $rc" && test "$rc" -eq 7 &&
	test "$(cat out.txt)" = "$expected" &&
	one_line err.txt && grep -q "truncated" err.txt
'

test_expect 'SIGKILL loses nothing written before it' '
	long_run 5000 k.log &&
	sleep 0.7 && kill -KILL $pid &&
	{ wait $pid || :; } &&
	summary_json k.log &&
	json_check k.log.json "j[\"process\"][\"truncated\"] and j[\"calls\"][\"realloc\"] > 1000"
'

test_expect 'a program rebuilt after its run is named as changed, not silently misread' '
	printf "#include <stdlib.h>\nint main(void){ free(malloc(7)); return 0; }\n" >p.c &&
	gcc -g -O0 -o p p.c &&
	SPY_OPTIONS=out=$PWD/p.log LD_PRELOAD=$LIBSPY ./p &&
	"$ANALYZE" dump p.log >same.out 2>same.err &&
	! test -s same.err &&
	sleep 0.01 && printf "\n/* changed */\n" >>p.c && gcc -g -O0 -o p p.c &&
	"$ANALYZE" dump p.log >changed.out 2>changed.err &&
	one_line changed.err && grep -q "changed after the run" changed.err &&
	grep -q "/p'"'"'" changed.err
'

test_expect 'a main that returns with the stack pointer where its inner calls left it (Free Pascal'"'"'s halt): same output and status, a finished trace' '
	gcc -O0 -g -o mj "$FIXTURES/mainjump.c" &&
	same_output mainjump "$PWD/mj" &&
	test "$(cat traced.out)" = "halting from deep inside" &&
	set -- traced/trace.mj.*.log && test $# -eq 1 &&
	summary_json "$1" &&
	json_check "$1.json" "not j[\"process\"][\"truncated\"] and j[\"process\"][\"exit\"][\"status\"] == 7"
'

if command -v fpc >/dev/null 2>&1; then
test_expect 'a Free Pascal program with threads (cthreads links libc): same output and status' '
	printf "program h;\nuses cthreads;\nbegin\n  writeln(%shello%s);\n  halt(3);\nend.\n" "'"'"'" "'"'"'" >h.pas &&
	fpc -g h.pas >fpc.out 2>&1 &&
	same_output fpc "$PWD/h" &&
	test "$(cat traced.out)" = hello
'
else
test_skip 'a Free Pascal program with threads' 'fpc is not installed'
fi

test_done
