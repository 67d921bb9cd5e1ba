#!/bin/bash
# t200: the lock lessons' demos under libspy, both ways: deadlock is flagged
# (lock-order-cycle at the right lines, even on the run that does not hang;
# a real hang is reported as it forms and ended with status 86),
# deadlock_fixed is not, livelock is flagged and livelock_fixed is not.
. "$(dirname "$0")/lib.sh"

DEMOS=$TOP/demos

# errors_of KIND: a python expression counting error findings of KIND.
errors_of() {
	echo "len([f for f in j['findings'] if f['kind'] == '$1' and f['severity'] == 'error'])"
}

test_expect 'deadlock (no hang): lock-order-cycle with both stacks of each edge, lines 48 and 51' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/deadlock" >out &&
	grep -q "total 200" out &&
	report_json t.log &&
	json_check t.log.json "$(errors_of lock-order-cycle) == 1" &&
	json_check t.log.json "[(s[\"frames\"][0][\"file\"].endswith(\"deadlock.c\"), s[\"frames\"][0][\"line\"]) for s in j[\"findings\"][0][\"stacks\"]] == [(True, 48), (True, 51), (True, 48), (True, 51)]" &&
	json_check t.log.json "len(set(s[\"thread\"] for s in j[\"findings\"][0][\"stacks\"])) == 2" &&
	json_check t.log.json "j[\"findings\"][0][\"details\"][\"cycle\"][\"locks\"] == [\"accounts[0].m\", \"accounts[1].m\"]" &&
	json_check t.log.json "$(errors_of deadlock) == 0"
'

test_expect 'deadlock --hang: reported at once, the program ended with status 86' '
	rc=0 &&
	SPY_OPTIONS=out=$PWD/t.log timeout 20 env LD_PRELOAD=$LIBSPY "$DEMOS/deadlock" --hang >out 2>err || rc=$? &&
	say "status $rc" && test $rc -eq 86 &&
	grep -q "spy: deadlock: 2 threads wait for each other" err &&
	report_json t.log &&
	json_check t.log.json "$(errors_of deadlock) == 1" &&
	json_check t.log.json "$(errors_of lock-order-cycle) == 1" &&
	json_check t.log.json "j[\"process\"][\"exit\"][\"status\"] == 86" &&
	{ "$ANALYZE" deadlock t.log >view; test $? -eq 1; } &&
	grep -q "deadlock.c:51" view && grep -q "deadlock.c:48" view
'

test_expect 'deadlock --hang with on_deadlock=wait: reported, then it hangs as it would' '
	rc=0 &&
	SPY_OPTIONS=out=$PWD/t.log:on_deadlock=wait timeout 2 env LD_PRELOAD=$LIBSPY "$DEMOS/deadlock" --hang >out 2>err || rc=$? &&
	say "status $rc" && test $rc -eq 124 &&
	grep -q "on_deadlock=wait" err &&
	report_json t.log &&
	json_check t.log.json "$(errors_of deadlock) == 1"
'

test_expect 'the plain deadlock --hang really hangs (so the test above means something)' '
	rc=0 && timeout 2 "$DEMOS/deadlock" --hang >out || rc=$? && test $rc -eq 124
'

for mode in --order --gate --trylock; do
	test_expect "deadlock_fixed $mode: no error finding, output unchanged" '
		same_output fixed "$DEMOS/deadlock_fixed" '"$mode"' &&
		t=$(ls traced/trace.*.log) && report_json "$t" &&
		json_check "$t.json" "len([f for f in j[\"findings\"] if f[\"severity\"] == \"error\"]) == 0"
	'
done

test_expect 'deadlock_fixed --gate: the inverted pair is an info line naming the gate' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/deadlock_fixed" --gate >out &&
	report_json t.log &&
	json_check t.log.json "[f[\"details\"][\"cycle\"][\"gate\"] for f in j[\"findings\"] if f[\"kind\"] == \"lock-order-cycle\"] == [\"bank\"]"
'

# The livelock needs both threads on a CPU at once: on a busy machine one
# run may get through honestly, so up to three runs are allowed.
test_expect 'livelock: flagged, with both threads, both locks and line 65' '
	for try in 1 2 3; do
		SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/livelock" >out &&
		report_json t.log &&
		json_check t.log.json "$(errors_of livelock) == 1" && break
		say "run $try: no livelock"
	done &&
	json_check t.log.json "$(errors_of livelock) == 1" &&
	json_check t.log.json "[len(f[\"stacks\"]) for f in j[\"findings\"] if f[\"kind\"] == \"livelock\"] == [2]" &&
	json_check t.log.json "all(s[\"frames\"][0][\"line\"] == 65 for f in j[\"findings\"] if f[\"kind\"] == \"livelock\" for s in f[\"stacks\"])" &&
	json_check t.log.json "$(errors_of lock-order-cycle) == 0" &&
	{ "$ANALYZE" livelock t.log >view; test $? -eq 1; } &&
	grep -q "lock_a" view && grep -q "lock_b" view
'

test_expect 'livelock_fixed: no livelock' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/livelock_fixed" >out &&
	grep -q "2000 of 2000" out &&
	report_json t.log &&
	json_check t.log.json "len(j[\"findings\"]) == 0"
'

test_expect 'analyze lock-graph: text, JSON, DOT with the cycle in red' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/deadlock" >out &&
	{ "$ANALYZE" lock-graph t.log >text; test $? -eq 1; } &&
	grep -q "threads can deadlock" text &&
	{ "$ANALYZE" lock-graph --json t.log >g.json; test $? -eq 1; } &&
	json_check g.json "[c[\"verdict\"] for c in j[\"cycles\"]] == [\"can-deadlock\"] and len(j[\"edges\"]) == 2" &&
	{ "$ANALYZE" lock-graph --dot t.log >g.dot; test $? -eq 1; } &&
	test "$(grep -c "color=red" g.dot)" -eq 2 && grep -q "accounts" g.dot
'

test_expect 'analyze lock-graph: two output formats, or one it lacks, are one line of bad usage' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/deadlock" >out &&
	for flags in "--dot --json" "--json --dot" "--svg --dot" "--json --svg" \
		"--dot --html" "--chrome" "--html" "--json -o g.json"; do
		rc=0 && "$ANALYZE" lock-graph $flags t.log >g.out 2>err || rc=$?
		say "lock-graph $flags: status $rc: $(cat err)"
		test $rc -eq 2 && one_line err && ! test -s g.out &&
		grep -q "^analyze: .* (see analyze --help)$" err || return 1
	done &&
	{ "$ANALYZE" lock-graph --dot --json t.log 2>err; test $? -eq 2; } &&
	grep -q "dot.* and .*json.* are two output formats" err &&
	{ "$ANALYZE" lock-graph --dot --dot t.log >g.dot; test $? -eq 1; } &&
	grep -q "^digraph" g.dot
'

test_expect 'analyze lock-graph --svg: an SVG picture with the cycle in red' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/deadlock" >out &&
	{ "$ANALYZE" lock-graph --svg t.log >g.svg; test $? -eq 1; } &&
	grep -q "<svg" g.svg && grep -q "accounts\[1\].m" g.svg &&
	test "$(grep -c "stroke=\"red\"" g.svg)" -ge 2
'

test_expect 'analyze locks: one row per lock with acquisitions' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/deadlock_fixed" >out &&
	"$ANALYZE" locks --json t.log >l.json &&
	json_check l.json "sorted(l[\"acquisitions\"] for l in j[\"locks\"]) == [20000, 20000]"
'

test_done
