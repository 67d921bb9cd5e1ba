#!/bin/bash
# t525: the fault a program dies of is a finding at its line, told by what
# the address was: the NULL page, a string literal (read-only memory),
# nothing mapped, a freed block (use-after-free, with the block's free and
# allocation stacks), a division by zero, abort(). The program dies as it
# would have (same status, same output); a clean run has no such finding.
# A block written past its end is a heap-overflow in the default mode too:
# over the next block's header, or into its own slack (an off-by-one).
. "$(dirname "$0")/lib.sh"

SRC=$FIXTURES/crashes.c
BIN=$TEST_DIR/crashes
gcc -std=gnu11 -O0 -g -fstack-protector-all -U_FORTIFY_SOURCE -o "$BIN" "$SRC" ||
	{ echo "Bail out! cannot build the test program"; exit 1; }

line_of() { grep -n -F -- "$1" "$SRC" | head -n 1 | cut -d: -f1; }
kind() { echo "[x for x in j[\"findings\"] if x[\"kind\"] == \"$1\"]"; }
frames() { echo "[(fr[\"function\"], fr[\"line\"]) for fr in $1[\"frames\"]]"; }

# dies HOW STATUS: plain and traced runs end with STATUS and print the same;
# the trace is t.log, its report t.log.json.
dies() {
	local prc=0 trc=0
	"$BIN" "$1" >plain.out 2>/dev/null || prc=$?
	SPY_OPTIONS=out=$PWD/t.log${OPTS:+:$OPTS} LD_PRELOAD=$LIBSPY "$BIN" "$1" >traced.out 2>/dev/null || trc=$?
	say "$1: status $prc plain, $trc traced"
	test "$prc" = "$2" && test "$trc" = "$2" && cmp plain.out traced.out &&
	report_json t.log
}

# crash_is CLASS LINE: one crash finding, of CLASS, its first frame at LINE.
crash_is() {
	json_check t.log.json "[x[\"details\"][\"class\"] for x in $(kind crash)] == [\"$1\"]" &&
	json_check t.log.json "$(frames "($(kind crash))[0][\"stacks\"][0]")[0] == (\"main\", $2)"
}

test_expect 'a write through a NULL pointer: null-pointer, at its line, address 0x8' '
	dies null 139 && crash_is null-pointer $(line_of "CRASH: null") &&
	json_check t.log.json "($(kind crash))[0][\"details\"][\"address\"] == \"0x8\""
'

test_expect 'raise(SIGSEGV) with no fault (how timeout(1) passes on its child'"'"'s death): no crash finding' '
	dies raise 139 &&
	json_check t.log.json "$(kind crash) == []" &&
	summary_json t.log && json_check t.log.json "j[\"process\"][\"exit\"][\"signal\"] == 11"
'

test_expect 'a crash handler that passes its fault on with raise: the fault itself, at its line, address 0x8' '
	dies handled 139 && crash_is null-pointer $(line_of "CRASH: handled") &&
	json_check t.log.json "($(kind crash))[0][\"details\"][\"address\"] == \"0x8\""
'

test_expect 'a write into a string literal: read-only memory, at its line' '
	dies literal 139 && crash_is read-only $(line_of "CRASH: literal")
'

test_expect 'a read where nothing is mapped: unmapped, at its line' '
	dies wild 139 && crash_is unmapped $(line_of "CRASH: wild")
'

test_expect 'a write into a freed big block: use-after-free with the free and allocation stacks' '
	dies bigfree 139 &&
	json_check t.log.json "not $(kind crash) and len($(kind use-after-free)) == 1" &&
	json_check t.log.json "(lambda d: d[\"mode\"] == \"crash\" and d[\"offset\"] == 1000 and d[\"size\"] == 8 << 20)(($(kind use-after-free))[0][\"details\"])" &&
	json_check t.log.json "$(frames "($(kind use-after-free))[0][\"stacks\"][0]")[0] == (\"main\", $(line_of "CRASH: bigfree"))" &&
	json_check t.log.json "(\"main\", $(line_of "CRASH: big freed")) in $(frames "($(kind use-after-free))[0][\"stacks\"][1]")" &&
	json_check t.log.json "(\"main\", $(line_of "CRASH: big allocated")) in $(frames "($(kind use-after-free))[0][\"stacks\"][2]")"
'

test_expect 'an integer division by zero: SIGFPE, division-by-zero, at its line' '
	dies divide 136 && crash_is division-by-zero $(line_of "CRASH: divide")
'

test_expect 'raise(SIGABRT) with no abort() (timeout(1) passing on its child'"'"'s abort): the program sent itself SIGABRT, at its line' '
	dies raiseabrt 134 &&
	json_check t.log.json "[x[\"details\"][\"class\"] for x in $(kind crash)] == [\"raised\"]" &&
	json_check t.log.json "(\"main\", $(line_of "CRASH: raiseabrt")) in $(frames "($(kind crash))[0][\"stacks\"][0]")"
'

test_expect 'abort(): the caller of abort in the stack' '
	dies abort 134 &&
	json_check t.log.json "[x[\"details\"][\"class\"] for x in $(kind crash)] == [\"abort\"]" &&
	json_check t.log.json "(\"main\", $(line_of "CRASH: abort")) in $(frames "($(kind crash))[0][\"stacks\"][0]")"
'

test_expect 'a failed assert(): class assert, with the line of the assert in the stack' '
	dies assert 134 &&
	json_check t.log.json "[x[\"details\"][\"class\"] for x in $(kind crash)] == [\"assert\"]" &&
	json_check t.log.json "(\"main\", $(line_of "CRASH: assert")) in $(frames "($(kind crash))[0][\"stacks\"][0]")"
'

test_expect 'a local array written past its end: stack-smashing, in the function that overran it' '
	dies smash 134 &&
	json_check t.log.json "[x[\"details\"][\"class\"] for x in $(kind crash)] == [\"stack-smashing\"]" &&
	json_check t.log.json "\"smash\" in [fr for fr, line in $(frames "($(kind crash))[0][\"stacks\"][0]")]"
'

test_expect 'a mapped file read past its end: SIGBUS, past-end-of-file, at its line' '
	dies mapped 135 && crash_is past-end-of-file $(line_of "CRASH: mapped") &&
	json_check t.log.json "\"short.dat\" in ($(kind crash))[0][\"headline\"]"
'

test_expect 'a use after free the program survived, then a NULL write: both found' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$BIN" both >traced.out 2>/dev/null; test $? = 139 &&
	report_json t.log &&
	json_check t.log.json "[(x[\"details\"][\"mode\"], x[\"details\"][\"access\"]) for x in $(kind use-after-free)] == [(\"quarantine\", \"read\")]" &&
	crash_is null-pointer $(line_of "CRASH: null again")
'

test_expect 'a list freed while reading node->next: the free of the fill pattern says where it came from, the wild read is a bad-pointer crash at its line; the fixed loop is clean' '
	dies freelist 139 &&
	json_check t.log.json "[(x[\"details\"][\"address\"], \"freed\" in x[\"explanation\"]) for x in $(kind invalid-free)] == [(\"0xfdfdfdfdfdfdfdfd\", True)]" &&
	crash_is bad-pointer $(line_of "CRASH: freelist") &&
	dies freelist-fixed 0 &&
	json_check t.log.json "not $(kind crash) and not $(kind invalid-free)"
'

test_expect 'a clean run, and a SIGTERM from outside: no crash finding' '
	dies none 0 && grep -x "no crash" traced.out &&
	json_check t.log.json "not $(kind crash)" &&
	rm -f t.log && SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY sleep 5 & pid=$! &&
	sleep 0.5 && kill -TERM $pid && { wait $pid; test $? = 143; } &&
	report_json t.log && json_check t.log.json "not $(kind crash)"
'

# overflow_found WHEN: one heap-overflow finding, for the 24-byte block of
# the overrun line (its allocation stack first), found WHEN.
overflow_found() {
	json_check t.log.json "len($(kind heap-overflow)) == 1" &&
	json_check t.log.json "(lambda d: d[\"size\"] == 24 and d[\"found\"] == \"$1\")(($(kind heap-overflow))[0][\"details\"])" &&
	json_check t.log.json "$(frames "($(kind heap-overflow))[0][\"stacks\"][0]")[0] == (\"main\", $(line_of "CRASH: overrun block"))"
}

test_expect 'a block written past its end over the next one'\''s header, then that one freed: glibc aborts as without libspy, a heap-corruption finding at the free' '
	dies overrun 134 &&
	json_check t.log.json "[x[\"details\"][\"class\"] for x in $(kind crash)] == [\"heap-corruption\"]" &&
	json_check t.log.json "(\"main\", $(line_of "CRASH: overrun free")) in $(frames "($(kind crash))[0][\"stacks\"][0]")" &&
	overflow_found "at its free" &&
	json_check t.log.json "$(frames "($(kind heap-overflow))[0][\"stacks\"][1]")[0] == (\"main\", $(line_of "CRASH: overrun free"))"
'

test_expect 'the same overrun with bytes that make the next header say "mapped on its own" (0x42): still found at its free' '
	dies overrunB 134 && overflow_found "at its free"
'

test_expect 'the same overrun, then a normal exit: status 0 and the same output, as without libspy' '
	dies overrun-exit 0 && grep -qx "no crash" traced.out &&
	json_check t.log.json "not $(kind crash)" && overflow_found "at a check"
'

# Without libspy glibc had the block long before the write, and goes on;
# given it back with a header written over, glibc would abort.
test_expect 'the same overrun over a block held in quarantine: found when it leaves, kept from glibc: status 0 and the same output, as without libspy' '
	OPTS=quarantine_mb=1 dies overrun-held 0 && grep -qx "no crash" traced.out &&
	json_check t.log.json "not $(kind crash)" && overflow_found "at a check"
'

test_expect 'the quarantine off: the header is still checked at the free (with the canaries); canary=0 as well: left to glibc alone' '
	OPTS=quarantine_mb=0 dies overrun 134 && overflow_found "at its free" &&
	OPTS=quarantine_mb=0:canary=0 dies overrun 134 &&
	json_check t.log.json "not $(kind heap-overflow)" &&
	json_check t.log.json "[x[\"details\"][\"class\"] for x in $(kind crash)] == [\"heap-corruption\"]"
'

test_expect 'a clean run: no heap-overflow finding' '
	dies none 0 && json_check t.log.json "not $(kind heap-overflow)"
'

# overrun_is WHEN: one heap-overflow finding, for the 7-byte block of the
# offbyone line, its byte 7 changed (one byte past the end), found WHEN.
overrun_is() {
	json_check t.log.json "len($(kind heap-overflow)) == 1" &&
	json_check t.log.json "(lambda d: (d[\"size\"], d[\"first_offset\"], d[\"bytes_past_end\"], d[\"found\"]) == (7, 7, 1, \"$1\"))(($(kind heap-overflow))[0][\"details\"])" &&
	json_check t.log.json "$(frames "($(kind heap-overflow))[0][\"stacks\"][0]")[0] == (\"main\", $(line_of "CRASH: offbyone block"))"
}

test_expect 'strcpy into malloc(strlen(s)): no crash, status 0, and a heap-overflow at the free, one byte past the end' '
	dies offbyone 0 && overrun_is "at its free" &&
	json_check t.log.json "$(frames "($(kind heap-overflow))[0][\"stacks\"][1]")[0] == (\"main\", $(line_of "CRASH: offbyone free"))"
'

test_expect 'the same block never freed: found at exit, with the leak scan off as well' '
	dies offbyone-kept 0 && overrun_is "at exit" &&
	rm -f t.log && SPY_OPTIONS=out=$PWD/t.log:leaks=0 LD_PRELOAD=$LIBSPY "$BIN" offbyone-kept >/dev/null &&
	report_json t.log && overrun_is "at exit"
'

test_expect 'malloc(strlen(s) + 1), and a block used up to its malloc_usable_size: no heap-overflow' '
	dies offbyone-fixed 0 && json_check t.log.json "not $(kind heap-overflow)" &&
	dies usable 0 && json_check t.log.json "not $(kind heap-overflow)"
'

test_expect 'canary=0: the off-by-one goes unseen, as without libspy' '
	SPY_OPTIONS=out=$PWD/c.log:canary=0 LD_PRELOAD=$LIBSPY "$BIN" offbyone >out &&
	report_json c.log && json_check c.log.json "not $(kind heap-overflow)"
'

test_expect 'the header before a block written over from below (not by the block before it): glibc aborts, a heap-overflow that blames no block' '
	dies underrun 134 &&
	json_check t.log.json "len($(kind heap-overflow)) == 1 and \"size\" not in ($(kind heap-overflow))[0][\"details\"]" &&
	json_check t.log.json "$(frames "($(kind heap-overflow))[0][\"stacks\"][0]")[0] == (\"main\", $(line_of "CRASH: underrun free"))"
'

test_expect 'one byte just past a block that has no slack (the next header'\''s size changed): a heap-overflow naming the block, at its free' '
	dies edge 134 &&
	json_check t.log.json "len($(kind heap-overflow)) == 1 and ($(kind heap-overflow))[0][\"details\"][\"size\"] == 40" &&
	json_check t.log.json "$(frames "($(kind heap-overflow))[0][\"stacks\"][0]")[0] == (\"main\", $(line_of "CRASH: edge block"))" &&
	json_check t.log.json "$(frames "($(kind heap-overflow))[0][\"stacks\"][1]")[0] == (\"main\", $(line_of "CRASH: edge free"))"
'

test_done
