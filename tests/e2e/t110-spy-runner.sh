#!/bin/bash
# t110: the spy runner keeps the program's exit status, refuses what libspy
# cannot trace with one line and status 2, finds its companions from any
# directory, and documents every option.
. "$(dirname "$0")/lib.sh"

build_victim || { echo "Bail out! cannot build the victim program"; exit 1; }

test_expect 'spy keeps status 0 and the program stdout; the report goes to stderr' '
	"$SPY" "$VICTIM" pid >out 2>err &&
	pid=$(sed -n "s/^pid //p" out) &&
	test "$(cat out)" = "pid $pid" &&
	grep -Fx "spy: trace written to spy.victim.$pid.log" err &&
	test -f "spy.victim.$pid.log"
'

test_expect 'spy keeps status 3' '
	rc=0 && "$SPY" --no-report "$VICTIM" exit 3 2>err || rc=$? &&
	test $rc -eq 3
'

test_expect 'spy reports death by SIGSEGV as 139 and by SIGTERM as 143' '
	rc=0 && "$SPY" --no-report "$VICTIM" segv 2>err || rc=$? &&
	test $rc -eq 139 &&
	grep -q "signal 11" err &&
	rc=0 && "$SPY" --no-report -- sh -c "kill -TERM \$\$" 2>err || rc=$? &&
	test $rc -eq 143
'

test_expect 'spy forwards SIGTERM to the program and keeps its status' '
	"$SPY" --no-report "$VICTIM" trapterm ready >out 2>err &
	spy_pid=$! &&
	for i in $(seq 100); do test -f ready && break; sleep 0.1; done &&
	test -f ready &&
	kill -TERM $spy_pid &&
	rc=0 && wait $spy_pid || rc=$? &&
	test $rc -eq 5 &&
	grep -x "got TERM" out
'

test_expect 'spy forwards SIGINT; the program dies of it and spy exits 130' '
	"$SPY" --no-report "$VICTIM" trapterm ready >out 2>err &
	spy_pid=$! &&
	for i in $(seq 100); do test -f ready && break; sleep 0.1; done &&
	test -f ready &&
	kill -INT $spy_pid &&
	rc=0 && wait $spy_pid || rc=$? &&
	test $rc -eq 130 && ! grep "got TERM" out
'

test_expect '--quiet leaves stderr empty; --rm removes the traces' '
	"$SPY" --quiet --no-report --rm "$VICTIM" fork >out 2>err &&
	! test -s err &&
	! ls spy.*.log &&
	"$SPY" --no-report "$VICTIM" fork >out 2>err &&
	test $(ls spy.victim.*.log | wc -l) -eq 2
'

test_expect 'a #! script runs: it becomes its interpreter' '
	printf "#!/bin/sh\necho script ran\nexit 4\n" >script.sh &&
	chmod +x script.sh &&
	rc=0 && "$SPY" --no-report ./script.sh >out 2>err || rc=$? &&
	test $rc -eq 4 && test "$(cat out)" = "script ran"
'

if [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/libc.a ] ||
   ls /usr/lib/*/libc.a >/dev/null 2>&1; then
	test_expect 'spy refuses a static binary with one line and status 2' '
		printf "int main(void) { return 0; }\n" >s.c &&
		gcc -static -o prog s.c &&
		rc=0 && "$SPY" ./prog >out 2>err || rc=$? &&
		test $rc -eq 2 && one_line err &&
		grep -Fx "spy: cannot trace '\''./prog'\'': it is statically linked (no PT_INTERP); libspy needs a dynamically linked program" err &&
		! test -s out && ! ls spy.*.log
	'
else
	test_skip 'spy refuses a static binary' 'no libc.a to link one'
fi

test_expect 'spy refuses a setuid binary with one line and status 2' '
	cp "$VICTIM" suid && chmod u+s suid &&
	rc=0 && "$SPY" ./suid pid >out 2>err || rc=$? &&
	test $rc -eq 2 && one_line err && grep -q "setuid" err &&
	! test -s out
'

test_expect 'spy refuses a setgid binary with one line and status 2' '
	cp "$VICTIM" sgid && chmod g+s sgid &&
	rc=0 && "$SPY" ./sgid pid >out 2>err || rc=$? &&
	test $rc -eq 2 && one_line err && grep -q "setgid" err
'

test_expect 'spy refuses a missing program, by path and in PATH' '
	rc=0 && "$SPY" ./no-such-program 2>err || rc=$? &&
	test $rc -eq 2 && one_line err && grep -q "no-such-program" err &&
	rc=0 && "$SPY" no-such-program-in-path 2>err || rc=$? &&
	test $rc -eq 2 && one_line err && grep -q "not found" err
'

test_expect 'spy refuses a non-executable file and a directory' '
	echo "echo hi" >plain.txt &&
	rc=0 && "$SPY" ./plain.txt 2>err || rc=$? &&
	test $rc -eq 2 && one_line err && grep -q "not executable" err &&
	mkdir d &&
	rc=0 && "$SPY" ./d 2>err || rc=$? &&
	test $rc -eq 2 && one_line err
'

test_expect 'spy finds a program in PATH like execvp' '
	mkdir bin && cp "$VICTIM" bin/mine &&
	rc=0 && PATH=$PWD/bin:$PATH "$SPY" --no-report mine exit 6 2>err || rc=$? &&
	test $rc -eq 6 && ls spy.mine.*.log
'

test_expect 'an unknown spy option: one line, status 2, the program does not run' '
	rc=0 && "$SPY" --x "$VICTIM" pid >out 2>err || rc=$? &&
	test $rc -eq 2 && one_line err &&
	grep -Fx "spy: unknown option '\''--x'\'' (see spy --help)" err &&
	! test -s out
'

test_expect 'every bad command line of spy: one line that points at --help, status 2' '
	for args in "--x $VICTIM" "--rm=1 $VICTIM" "-o" "--report-file" "" \
		"--allocator nosuch $VICTIM" "--opt x $VICTIM" "--opt a=b:c $VICTIM" \
		"--opt bogus=1 $VICTIM" "--json --html $VICTIM" "--html --json $VICTIM"; do
		rc=0 && "$SPY" $args >out 2>err || rc=$?
		say "spy $args: status $rc: $(cat err)"
		test $rc -eq 2 && one_line err && ! test -s out &&
		grep -q "^spy: .* (see spy --help)$" err || return 1
	done
'

test_expect 'spy works from another directory and writes the trace there' '
	mkdir -p a/b && cp "$VICTIM" a/prog &&
	(cd a/b && "$SPY" --no-report ../prog pid >out 2>err) &&
	pid=$(sed -n "s/^pid //p" a/b/out) &&
	test -f "a/b/spy.prog.$pid.log"
'

test_expect 'an installed spy finds libspy.so in ../lib/libspy' '
	{ make -s -C "$TOP" install PREFIX="$PWD/pfx" >make.out 2>&1 ||
	  { cat make.out; false; }; } &&
	test -x pfx/bin/spy && test -f pfx/lib/libspy/libspy.so &&
	mkdir run && cd run &&
	env PATH=/usr/bin:/bin "$OLDPWD/pfx/bin/spy" --no-report "$VICTIM" pid >out 2>err &&
	pid=$(sed -n "s/^pid //p" out) &&
	test -f "spy.victim.$pid.log"
'

test_expect 'spy --help lists every option of common/options_table.h' '
	"$SPY" --help >help &&
	names=$(sed -n "s/^[[:space:]]*SPY_OPTION(\([a-z_0-9]*\),.*/\1/p" "$TOP/common/options_table.h") &&
	test -n "$names" &&
	for n in $names; do
		grep -q "^ *$n=" help || { say "--help lacks $n"; exit 1; }
	done &&
	grep -q -- "--out" help && grep -q -- "--json" help &&
	grep -q -- "--no-report" help && grep -q -- "--opt" help
'

test_expect 'docs/options.md documents every option of the table, and no other' '
	names=$(sed -n "s/^[[:space:]]*SPY_OPTION(\([a-z_0-9]*\),.*/\1/p" "$TOP/common/options_table.h" | sort) &&
	documented=$(sed -n "/^## SPY_OPTIONS/,/^## /s/^| \`\([a-z_0-9]*\)\` |.*/\1/p" "$TOP/docs/options.md" | sort) &&
	say "table: $names" && say "docs: $documented" &&
	test -n "$names" && test "$names" = "$documented"
'

test_expect 'docs/options.md documents every flag of spy --help' '
	"$SPY" --help >help &&
	flags=$(sed -n "s/^ *\(-., \)\{0,1\}--\([a-z-]*\).*/\2/p" help) &&
	test -n "$flags" &&
	for f in $flags; do
		grep -q -- "\`--$f" "$TOP/docs/options.md" || { say "docs lack --$f"; exit 1; }
	done
'

test_expect 'spy --opt passes entries and -o names the trace' '
	"$SPY" --no-report -o mine.log --opt stack_depth=8 -- sh -c "echo \"\$SPY_OPTIONS\"" >out 2>err &&
	grep -q "stack_depth=8" out && grep -q "out=$PWD/mine.log" out &&
	test -f mine.log &&
	rc=0 && "$SPY" --opt bogus=1 true 2>err || rc=$? &&
	test $rc -eq 2 && one_line err
'

test_expect 'spy prepends libspy.so to LD_PRELOAD and merges SPY_OPTIONS' '
	printf "void noop_fn(void) {}\n" >noop.c &&
	gcc -shared -fPIC -o noop.so noop.c &&
	LD_PRELOAD=$PWD/noop.so SPY_OPTIONS=stack_depth=9 \
		"$SPY" --no-report -- sh -c "echo \"\$LD_PRELOAD\"; echo \"\$SPY_OPTIONS\"" >out 2>err &&
	test "$(sed -n 1p out)" = "$LIBSPY:$PWD/noop.so" &&
	sed -n 2p out | grep -q "stack_depth=9" &&
	sed -n 2p out | grep -q "out=$PWD/spy.%e.%p.log"
'

test_expect 'spy --json --report-file writes the JSON report of the program' '
	"$SPY" --json --report-file r.json "$VICTIM" pid >out 2>err &&
	pid=$(sed -n "s/^pid //p" out) &&
	json_check r.json "j[\"process\"][\"pid\"] == $pid and j[\"process\"][\"exit\"][\"status\"] == 0 and isinstance(j[\"findings\"], list)"
'

test_expect 'spy without a trace says so in one line and keeps the status' '
	rc=0 && "$SPY" -o /proc/no-such-dir/x.log "$VICTIM" exit 3 >out 2>err || rc=$? &&
	test $rc -eq 3 &&
	grep -c "^spy: no trace was written" err >n && test "$(cat n)" = 1
'

test_done
