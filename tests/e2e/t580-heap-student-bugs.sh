#!/bin/bash
# t580: heap bugs as students write them, each against its correct twin:
# the bug is a finding of the right kind at its line, the twin has none.
. "$(dirname "$0")/lib.sh"

SRC=$FIXTURES/student_heap.c
BIN=$TEST_DIR/student_heap
gcc -std=gnu11 -O0 -g -o "$BIN" "$SRC" ||
	{ echo "Bail out! cannot build the test program"; exit 1; }

line_of() { grep -n -F -- "$1" "$SRC" | head -n 1 | cut -d: -f1; }
kind() { echo "[x for x in j[\"findings\"] if x[\"kind\"] == \"$1\"]"; }
# frame_at STACK N: (function, line) of frame N of the user's code
user() { echo "[(fr[\"function\"], fr[\"line\"]) for fr in $1[\"frames\"] if fr[\"function\"] in (\"main\", \"$2\")][0]"; }

# run CASE [ok] [OPTS]: traced run, trace t.log, report t.log.json
run() {
	local rc=0
	rm -f t.log
	SPY_OPTIONS=out=$PWD/t.log${3:+:$3} LD_PRELOAD=$LIBSPY "$BIN" "$1" $2 >out 2>err || rc=$?
	say "$1 $2: status $rc"
	report_json t.log
	echo "$rc" >status
}
no_heap_findings() {
	json_check t.log.json "[x[\"kind\"] for x in j[\"findings\"] if x[\"kind\"] in (\"double-free\", \"invalid-free\", \"crash\", \"heap-overflow\", \"use-after-free\", \"leak\")] == []"
}

test_expect 'free of memory from mmap: invalid-free at its line, not passed on (glibc would crash)' '
	run free_mmap && test "$(cat status)" = 0 &&
	json_check t.log.json "len($(kind invalid-free)) == 1 and $(kind crash) == []" &&
	json_check t.log.json "$(user "($(kind invalid-free))[0][\"stacks\"][0]" free_mmap) == (\"free_mmap\", $(line_of "BUG: free_mmap"))" &&
	json_check t.log.json "\"mmap\" in ($(kind invalid-free))[0][\"headline\"]"
'

test_expect 'munmap of it: nothing' '
	run free_mmap ok && test "$(cat status)" = 0 && no_heap_findings
'

test_expect 'double free after the block left the quarantine: glibc aborts, the finding is a double-free with both frees' '
	run double_free_late && test "$(cat status)" = 134 &&
	json_check t.log.json "len($(kind double-free)) == 1 and $(kind crash) == []" &&
	json_check t.log.json "$(user "($(kind double-free))[0][\"stacks\"][0]" double_free_late) == (\"double_free_late\", $(line_of "BUG: double_free_late"))" &&
	json_check t.log.json "$(user "($(kind double-free))[0][\"stacks\"][1]" double_free_late) == (\"double_free_late\", $(line_of "FIRST: double_free_late"))" &&
	json_check t.log.json "$(user "($(kind double-free))[0][\"stacks\"][2]" double_free_late) == (\"double_free_late\", $(line_of "ALLOC: double_free_late"))"
'

test_expect 'one free each: nothing' '
	run double_free_late ok && test "$(cat status)" = 0 && no_heap_findings
'

test_expect 'a pointer kept to a block realloc grew: use-after-free, moved away by realloc at its line' '
	run realloc_stale && test "$(cat status)" = 0 &&
	json_check t.log.json "len($(kind use-after-free)) == 1" &&
	json_check t.log.json "($(kind use-after-free))[0][\"stacks\"][0][\"label\"] == \"moved away by realloc here\"" &&
	json_check t.log.json "$(user "($(kind use-after-free))[0][\"stacks\"][0]" realloc_stale) == (\"realloc_stale\", $(line_of "MOVED: realloc_stale"))" &&
	json_check t.log.json "$(user "($(kind use-after-free))[0][\"stacks\"][1]" realloc_stale) == (\"realloc_stale\", $(line_of "ALLOC: realloc_stale"))" &&
	json_check t.log.json "($(kind use-after-free))[0][\"details\"][\"first_offset\"] == 10"
'

test_expect 'the pointer realloc returned: nothing' '
	run realloc_stale ok && test "$(cat status)" = 0 && no_heap_findings
'

test_expect 'free after realloc(p, 0): a double-free, not passed on, the realloc as the first free' '
	run realloc_zero && test "$(cat status)" = 0 &&
	json_check t.log.json "len($(kind double-free)) == 1 and $(kind crash) == []" &&
	json_check t.log.json "($(kind double-free))[0][\"details\"][\"passed_on\"] == \"no\"" &&
	json_check t.log.json "$(user "($(kind double-free))[0][\"stacks\"][0]" realloc_zero) == (\"realloc_zero\", $(line_of "BUG: realloc_zero"))" &&
	json_check t.log.json "$(user "($(kind double-free))[0][\"stacks\"][1]" realloc_zero) == (\"realloc_zero\", $(line_of "FIRST: realloc_zero"))"
'

test_expect 'realloc(p, 0) alone: nothing' '
	run realloc_zero ok && test "$(cat status)" = 0 && no_heap_findings
'

# overrun CASE: one heap-overflow, allocated and found at the marked lines
overrun() {
	json_check t.log.json "len($(kind heap-overflow)) == 1 and $(kind crash) == []" &&
	json_check t.log.json "$(user "($(kind heap-overflow))[0][\"stacks\"][0]" $1) == (\"$1\", $(line_of "ALLOC: $1"))" &&
	json_check t.log.json "$(user "($(kind heap-overflow))[0][\"stacks\"][1]" $1) == (\"$1\", $(line_of "FREE: $1"))"
}

for mode in "" guard=1; do
	test_expect "malloc(strlen(s)) and strcpy${mode:+ ($mode)}: heap-overflow of its byte 12" '
		run strcpy_short "" $mode && test "$(cat status)" = 0 && overrun strcpy_short &&
		json_check t.log.json "($(kind heap-overflow))[0][\"details\"][\"first_offset\"] == 12"
	'
	test_expect "malloc(strlen(s) + 1)${mode:+ ($mode)}: nothing" '
		run strcpy_short ok $mode && test "$(cat status)" = 0 && no_heap_findings
	'
	test_expect "five ints, a[5] written${mode:+ ($mode)}: heap-overflow at byte 20" '
		run array_le "" $mode && test "$(cat status)" = 0 && overrun array_le &&
		json_check t.log.json "($(kind heap-overflow))[0][\"details\"][\"first_offset\"] == 20"
	'
	test_expect "five ints, five written${mode:+ ($mode)}: nothing" '
		run array_le ok $mode && test "$(cat status)" = 0 && no_heap_findings
	'
done

# spy reports the program's own trace: a child's findings were left
# behind a file name it listed like any other
test_expect 'a leak in a forked child: spy says the child'"'"'s trace has findings' '
	mkdir -p fl && (cd fl && "$SPY" -o "fl.%p.log" "$BIN" fork_leak >out 2>err) &&
	grep "trace of a child or an exec'"'"'d image, with findings: fl\.[0-9]*\.log (analyze report fl\.[0-9]*\.log)" fl/err &&
	child=fl/$(sed -n "s/.*with findings: \(fl\.[0-9]*\.log\) .*/\1/p" fl/err) &&
	test -f "$child" && report_json "$child" &&
	json_check "$child.json" "len($(kind leak)) == 1"
'

test_expect 'no leak in the child: its trace listed as before' '
	rm -rf fl && mkdir -p fl && (cd fl && "$SPY" -o "fl.%p.log" "$BIN" fork_leak ok >out 2>err) &&
	! grep "with findings" fl/err && ! grep "were not read" fl/err
'

# a build under spy leaves hundreds of traces: 16 are read for findings,
# the rest listed and counted
test_expect 'twenty runs with a leaking child: 16 traces read, the other 24 counted' '
	rm -rf fl && mkdir -p fl &&
	(cd fl && "$SPY" -o "fl.%p.log" bash -c "for i in {1..20}; do \"$BIN\" fork_leak; done" >out 2>err) &&
	test "$(grep -c "trace of a child or an exec" fl/err)" = 40 &&
	grep -q "with findings" fl/err &&
	grep -q "^spy: 24 more traces of children or exec'"'"'d images were not read for findings" fl/err
'

CXX_SRC=$FIXTURES/student_cxx.cc
CXX_BIN=$TEST_DIR/student_cxx
g++ -O0 -g -o "$CXX_BIN" "$CXX_SRC" ||
	{ echo "Bail out! cannot build the C++ test program"; exit 1; }
cxx_line() { grep -n -F -- "$1" "$CXX_SRC" | head -n 1 | cut -d: -f1; }

# delete[] of a new object reads a count in front of it and gives back a
# pointer 8 bytes before it: that is the mismatch, not a free of a wild
# address (what the destructors it then ran over the count did is the
# program's)
test_expect 'new with delete[]: mismatched-free at its line, the block given back' '
	rm -f t.log && SPY_OPTIONS=out=$PWD/t.log:guard=1 LD_PRELOAD=$LIBSPY "$CXX_BIN" >out 2>err && report_json t.log &&
	json_check t.log.json "len($(kind mismatched-free)) == 1 and $(kind invalid-free) == [] and $(kind leak) == []" &&
	json_check t.log.json "$(user "($(kind mismatched-free))[0][\"stacks\"][0]" main) == (\"main\", $(cxx_line "BUG: delete[]"))" &&
	json_check t.log.json "$(user "($(kind mismatched-free))[0][\"stacks\"][1]" main) == (\"main\", $(cxx_line "ALLOC: new"))" &&
	json_check t.log.json "($(kind mismatched-free))[0][\"details\"][\"released_with\"] == \"delete[]\""
'

test_expect 'new with delete: nothing' '
	rm -f t.log && SPY_OPTIONS=out=$PWD/t.log:guard=1 LD_PRELOAD=$LIBSPY "$CXX_BIN" ok >out 2>err && report_json t.log &&
	no_heap_findings && json_check t.log.json "$(kind mismatched-free) == []"
'

test_done
