#!/bin/bash
# t140: a forked child writes its own trace naming its parent; an exec'd
# image writes its own trace; posix_spawn and vfork keep working.
. "$(dirname "$0")/lib.sh"

build_victim || { echo "Bail out! cannot build the victim program"; exit 1; }
export SPY_OPTIONS="out=$TEST_DIR/tr.%e.%p.log"

# names_parent JSON PARENT_TRACE: the summary names the parent's trace.
names_parent() {
	json_check "$1" "
any(str(v).endswith('/$(basename "$2")') or str(v) == '$(basename "$2")'
    for v in (j['process'].get('parent_trace'), j.get('parent_trace')))"
}

test_expect 'fork: parent and child each write a trace; the child names its parent' '
	LD_PRELOAD=$LIBSPY "$VICTIM" fork >out 2>err &&
	parent=$(sed -n "s/^parent \([0-9]*\) .*/\1/p" out) &&
	child=$(sed -n "s/^child \([0-9]*\) .*/\1/p" out) &&
	test -n "$parent" && test -n "$child" &&
	P=$TEST_DIR/tr.victim.$parent.log && C=$TEST_DIR/tr.victim.$child.log &&
	test -f "$P" && test -f "$C" &&
	summary_ok "$P" && summary_json "$C" &&
	json_check "$C.json" "j[\"process\"][\"pid\"] == $child and j[\"process\"][\"ppid\"] == $parent" &&
	names_parent "$C.json" "$P" &&
	summary_json "$P" &&
	json_check "$P.json" "j[\"process\"][\"pid\"] == $parent" &&
	! names_parent "$P.json" "$C"
'

test_expect 'fork: the child trace records its own exit status' '
	LD_PRELOAD=$LIBSPY "$VICTIM" fork >out 2>err &&
	child=$(sed -n "s/^child \([0-9]*\) .*/\1/p" out) &&
	summary_json "$TEST_DIR/tr.victim.$child.log" &&
	json_check "$TEST_DIR/tr.victim.$child.log.json" "j[\"process\"][\"exit\"][\"status\"] == 0 and j[\"process\"][\"exit\"][\"signal\"] is None"
'

test_expect 'exec: the exec'\''d image writes its own trace with the same pid' '
	cp "$VICTIM" newimage &&
	rc=0 && LD_PRELOAD=$LIBSPY "$VICTIM" exec "$PWD/newimage" exit 4 >out 2>err || rc=$? &&
	test $rc -eq 4 &&
	pid=$(sed -n "s/^pid //p" out) &&
	A=$TEST_DIR/tr.victim.$pid.log && B=$TEST_DIR/tr.newimage.$pid.log &&
	test -f "$A" && test -f "$B" &&
	summary_ok "$A" && summary_json "$B" &&
	json_check "$B.json" "j[\"process\"][\"pid\"] == $pid and j[\"process\"][\"exit\"][\"status\"] == 4" &&
	names_parent "$B.json" "$A"
'

test_expect 'posix_spawn and vfork keep working; every process leaves a trace' '
	"$VICTIM" spawn >plain.out &&
	LD_PRELOAD=$LIBSPY "$VICTIM" spawn >out 2>err &&
	cmp plain.out out &&
	n=0 && for t in "$TEST_DIR"/tr.*.log; do
		summary_ok "$t" || exit 1; n=$((n + 1))
	done &&
	say "$n traces" && ls "$TEST_DIR"/tr.echo.*.log
'

test_expect 'spy lists the traces of the children it can find' '
	rm -f "$TEST_DIR"/tr.* &&
	cd "$TEST_DIR" && mkdir spyrun && cd spyrun &&
	SPY_OPTIONS= "$SPY" --no-report "$VICTIM" fork >out 2>err &&
	child=$(sed -n "s/^child \([0-9]*\) .*/\1/p" out) &&
	grep -F "spy.victim.$child.log" err
'

test_done
