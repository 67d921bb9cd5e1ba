#!/bin/bash
# t150: fatal signals keep their exit status under libspy and are recorded;
# a SIGKILLed program leaves a trace the analyzer still reads; the
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

test_expect 'the program'\''s own SIGSEGV handler still runs' '
	run_victim handler 7 &&
	grep -x "own handler ran" out &&
	summary_json "$trace" &&
	json_check "$trace.json" "j[\"process\"][\"exit\"][\"status\"] == 7 and j[\"process\"][\"exit\"][\"signal\"] is None"
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

test_done
