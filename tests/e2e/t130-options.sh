#!/bin/bash
# t130: SPY_OPTIONS parsing as the program sees it: a bad entry is one clear
# line on stderr and the program runs on unchanged; good entries are silent;
# quiet=1 silences all but errors in options.
. "$(dirname "$0")/lib.sh"

build_victim || { echo "Bail out! cannot build the victim program"; exit 1; }
"$VICTIM" say 3 >expected.out

# with_options OPTS: runs the victim under libspy with SPY_OPTIONS=OPTS;
# stdout and status must be the plain run's. Leaves its stderr in err.
with_options() {
	local rc=0
	SPY_OPTIONS=$1 LD_PRELOAD=$LIBSPY "$VICTIM" say 3 >out 2>err || rc=$?
	test $rc -eq 3 || { say "status $rc, not 3"; cat err; return 1; }
	cmp "$TEST_DIR/expected.out" out
}

test_expect 'valid options are accepted silently and the trace reads' '
	with_options "stack_depth=8:stacks=1:quiet=0:out=t.%p.log" &&
	! test -s err &&
	for t in t.*.log; do summary_ok "$t" || exit 1; done &&
	ls t.*.log
'

test_expect 'empty entries and a trailing colon are accepted silently' '
	with_options ":stack_depth=8::" && ! test -s err
'

test_expect 'an unknown option: exactly one line, the program runs on and is traced' '
	with_options "bogus=1:out=t.log" &&
	one_line err &&
	grep -Fx "spy: unknown option '\''bogus'\'' (see spy --help)" err &&
	summary_ok t.log
'

for bad in stack_depth=abc stack_depth=0 stack_depth=257 stack_depth= \
	   stacks=2 stacks=yes quiet=-1 stack_depth=1x heap stack_depth=99999999999999999999; do
	test_expect "a malformed value '$bad': exactly one line naming it, the program runs on" '
		with_options "'"$bad"':out=t.log" &&
		one_line err &&
		grep -q "^spy: .*'\''${bad%%=*}'\''" err &&
		summary_ok t.log
	'
done

test_expect 'the option after a bad one still applies' '
	with_options "bogus=1:out=after.log" &&
	test -f after.log && one_line err
'

test_expect 'quiet=1 silences the warning of an unwritable trace path' '
	echo file >notadir &&
	with_options "out=$PWD/notadir/t.log" && one_line err &&
	with_options "quiet=1:out=$PWD/notadir/t.log" && ! test -s err
'

test_expect 'quiet=1 still reports errors in options' '
	with_options "quiet=1:bogus=1" && one_line err
'

test_expect 'stacks=0 still gives a readable trace, without stacks' '
	with_options "stacks=0:out=nostacks.log" && summary_ok nostacks.log &&
	summary_json nostacks.log &&
	json_check nostacks.log.json "not j[\"process\"][\"stacks_captured\"] and j[\"trace\"][\"stacks\"] == 0"
'

test_done
