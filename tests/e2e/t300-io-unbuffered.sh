#!/bin/bash
# t300: the system-call lesson both ways. syscall_overhead's byte-at-a-time
# modes (write, and fputc on an unbuffered stream) are flagged unbuffered-io
# at the line that makes the calls, with every call counted; the big and
# buffered modes are clean; the same holds for the Python version; and the
# demo's output is unchanged under libspy.
. "$(dirname "$0")/lib.sh"

DEMO=$TOP/demos/syscall_overhead
SRC=$TOP/demos/syscall_overhead.c
PYDEMO=$TOP/demos/syscall_overhead.py
LINE_BYTES=$(grep -n 'BUG: one system call per byte' "$SRC" | cut -d: -f1)
LINE_PUTC=$(grep -n 'fputc(byte_at(i), f);' "$SRC" | cut -d: -f1)
[ -n "$LINE_BYTES" ] && [ -n "$LINE_PUTC" ] ||
	{ echo "Bail out! cannot find the demo's lines"; exit 1; }

# run_mode MODE [N]: the demo under libspy into tr.log; stdout in out.
run_mode() {
	SPY_OPTIONS=out=$PWD/tr.log LD_PRELOAD=$LIBSPY "$DEMO" "$1" "${2:-20000}" >out &&
	test -s tr.log
}

# syscalls_json TRACE WANT: `analyze syscalls --json` into TRACE.sc.json,
# exiting WANT (0: no findings, 1: findings).
syscalls_json() {
	local rc=0
	"$ANALYZE" syscalls --json "$1" >"$1.sc.json" 2>"$1.sc.err" || rc=$?
	say "analyze syscalls exited $rc, want $2"
	[ "$rc" -eq "$2" ] || { cat "$1.sc.err"; head -c 2000 "$1.sc.json"; return 1; }
}

FLAG='[f for f in j["findings"] if f["kind"] == "unbuffered-io"]'

test_expect 'bytes: flagged at the write line, every call counted' '
	run_mode bytes 20000 &&
	syscalls_json tr.log 1 &&
	json_check tr.log.sc.json "len($FLAG) == 1" &&
	json_check tr.log.sc.json "$FLAG[0][\"details\"][\"calls\"] == 20000 and $FLAG[0][\"details\"][\"bytes\"] == 20000" &&
	json_check tr.log.sc.json "$FLAG[0][\"details\"][\"line\"] == $LINE_BYTES and $FLAG[0][\"details\"][\"file\"].endswith(\"syscall_overhead.c\")" &&
	json_check tr.log.sc.json "$FLAG[0][\"details\"][\"calls_with_64k_buffer\"] == 1 and $FLAG[0][\"details\"][\"fd_path\"] == \"/dev/null\"" &&
	json_check tr.log.sc.json "$FLAG[0][\"details\"][\"time_ns\"] > 0 and $FLAG[0][\"details\"][\"timed_calls\"] > 0"
'

test_expect 'putc: stdio'"'"'s own writes are counted and put at the fputc line' '
	run_mode putc 20000 &&
	syscalls_json tr.log 1 &&
	json_check tr.log.sc.json "len($FLAG) == 1 and $FLAG[0][\"details\"][\"calls\"] == 20000" &&
	json_check tr.log.sc.json "$FLAG[0][\"details\"][\"line\"] == $LINE_PUTC" &&
	json_check tr.log.sc.json "\"write\" in j[\"interception\"][\"libc_entries_patched\"]"
'

test_expect 'big: one write, not flagged' '
	run_mode big 20000 &&
	syscalls_json tr.log 0 &&
	json_check tr.log.sc.json "any(s[\"calls\"] == 1 and s[\"bytes\"] == 20000 and s[\"fd_path\"] == \"/dev/null\" for s in j[\"sites\"])"
'

test_expect 'buffered: the same bytes through a 64 KiB buffer, not flagged' '
	run_mode buffered 200000 &&
	syscalls_json tr.log 0 &&
	json_check tr.log.sc.json "sum(s[\"calls\"] for s in j[\"sites\"] if s[\"fd_path\"] == \"/dev/null\") == 4"
'

test_expect 'the report carries the finding; the fixed modes report none' '
	run_mode bytes 5000 && { "$ANALYZE" report tr.log >rep.txt; test $? = 1; } &&
	grep -q "unbuffered-io" rep.txt &&
	rm -f tr.log && run_mode buffered 5000 &&
	{ "$ANALYZE" report --json tr.log >rep.json || :; } &&
	json_check rep.json "not $FLAG"
'

# A program without symbols whose small writes come with a few large
# ones: the headline said "of 1.09e+03 bytes at an unknown function".
cat >"$TEST_DIR/mixed.c" <<'EOF'
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
static char big[65536];
int main(void)
{
	int fd = open("/dev/null", O_WRONLY);
	for (int i = 0; i < 2000; i++)
		if (write(fd, big, i % 20 ? 4 : sizeof(big)) < 0)
			return 1;
	return 0;
}
EOF
test_expect 'stripped, small writes among large ones: the headline names the median and the code' '
	gcc -O0 -g0 -s -o mixed "$TEST_DIR/mixed.c" &&
	SPY_OPTIONS=out=$PWD/tr.log LD_PRELOAD=$LIBSPY ./mixed &&
	syscalls_json tr.log 1 &&
	json_check tr.log.sc.json "len($FLAG) == 1" &&
	json_check tr.log.sc.json "__import__(\"re\").fullmatch(r\"2,000 writes, half of them under 8 bytes, at mixed\+0x[0-9a-f]+\", $FLAG[0][\"headline\"])" &&
	json_check tr.log.sc.json "$FLAG[0][\"explanation\"].startswith(\"Every write\") and \"unknown function\" not in $FLAG[0][\"explanation\"]"
'

test_expect 'the demo prints the same under libspy (time column aside)' '
	"$DEMO" all 20000 | cut -f1 >plain.txt &&
	run_mode all 20000 && cut -f1 out >traced.txt &&
	cmp plain.txt traced.txt
'

test_expect 'text view: a table per call site and per descriptor' '
	run_mode bytes 20000 &&
	{ "$ANALYZE" syscalls tr.log >view.txt; test $? = 1; } &&
	grep -q "By call site" view.txt && grep -q "By descriptor" view.txt &&
	grep -q "syscall_overhead.c:$LINE_BYTES" view.txt &&
	grep -q "20,000 calls -> 1" view.txt
'

# rows_apart FILE: in the call-site table of `analyze syscalls`, no two
# rows show the same call, descriptor and frames (a row is a line of
# numbers, whose call and descriptor start at column 45, and the frame
# lines under it).
rows_apart() {
	python3 - "$1" <<'PY'
import sys
text = open(sys.argv[1]).read()
table = text.split("By call site")[1].split("\n\n")[0].split("\n")[2:]
rows, seen = [], {}
for line in table:
    if line.startswith("           "):
        rows[-1].append(line.strip())
    else:
        rows.append([line[44:]])
for r in rows:
    seen.setdefault(tuple(r), []).append(r)
alike = [r for r, v in seen.items() if len(v) > 1]
print(len(rows), "rows;", "alike:", alike)
sys.exit(1 if alike or len(rows) < 2 else 0)
PY
}

test_expect 'text view: rows that part only further out show callers until they read apart' '
	run_mode all 2000 &&
	{ "$ANALYZE" syscalls tr.log >view.txt; test $? = 1; } &&
	rows_apart view.txt &&
	grep -q "^           called from main at syscall_overhead.c:[0-9]*$" view.txt &&
	test "$(grep -c "^           called from" view.txt)" -le 4
'

if command -v python3 >/dev/null; then
	test_expect 'Python: os.write per byte flagged, buffered file clean' '
		SPY_OPTIONS=out=$PWD/py.%p.log LD_PRELOAD=$LIBSPY python3 "$PYDEMO" bytes 5000 >out &&
		set -- py.*.log && test $# = 1 &&
		syscalls_json "$1" 1 &&
		json_check "$1.sc.json" "len($FLAG) == 1 and $FLAG[0][\"details\"][\"calls\"] == 5000" &&
		rm -f py.*.log &&
		SPY_OPTIONS=out=$PWD/py.%p.log LD_PRELOAD=$LIBSPY python3 "$PYDEMO" buffered 5000 >out &&
		set -- py.*.log && test $# = 1 &&
		syscalls_json "$1" 0
	'
else
	test_skip 'Python: os.write per byte flagged, buffered file clean' 'no python3'
fi

test_done
