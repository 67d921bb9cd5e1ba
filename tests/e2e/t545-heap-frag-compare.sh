#!/bin/bash
# t545: analyze fragmentation --compare and heap_every. The fragmenting
# demo is judged worse than its pool variant (in either order), two pool
# runs are judged the same; glibc and jemalloc runs are set side by side
# with jemalloc's own statistics; interval snapshots are there when asked
# and absent when not; bad input to --compare is refused in one line;
# every text output fits 80 columns.
. "$(dirname "$0")/lib.sh"

T=$TEST_DIR/traces
# compare A B FILE: the JSON comparison in FILE; status 0 or 1 expected.
compare() {
	local rc=0
	"$ANALYZE" fragmentation --compare --json "$1" "$2" >"$3" 2>"$3.err" || rc=$?
	[ "$rc" -le 1 ] || { cat "$3.err"; return 1; }
}
# fits FILE: no line of FILE is wider than 80 columns (characters, not
# bytes: a name cut to fit ends in one).
fits() {
	python3 - "$1" <<-'PY' || { say "wider than 80 columns in $1"; return 1; }
	import sys
	long = [l for l in open(sys.argv[1], encoding="utf-8").read().split("\n") if len(l) > 80]
	print("\n".join(long))
	sys.exit(1 if long else 0)
	PY
}

test_expect 'the traces: fragmentation and its pool variant, plain and with heap_every' '
	mkdir -p "$T" && cd "$T" &&
	rc=0 && SPY_OPTIONS=out=$T/frag.log traced "$TOP/demos/fragmentation" >out || rc=$? &&
	test $rc = 1 &&
	SPY_OPTIONS=out=$T/fixed.log traced "$TOP/demos/fragmentation_fixed" >out &&
	SPY_OPTIONS=out=$T/fixed2.log traced "$TOP/demos/fragmentation_fixed" >out &&
	rc=0 && SPY_OPTIONS=out=$T/frag_every.log:heap_every=1 traced "$TOP/demos/fragmentation" >out || rc=$? &&
	test $rc = 1
'

test_expect 'fragmentation against its pool variant: A fragmented worse, in numbers' '
	rc=0 && "$ANALYZE" fragmentation --compare "$T/frag.log" "$T/fixed.log" >c.txt || rc=$? &&
	test $rc = 1 &&
	tr "\n" " " <c.txt >flat.txt &&
	grep -q "A.s heap fragmented worse: .* in [0-9]\{4,\} holes" flat.txt &&
	grep -q "An allocation failed in A only" flat.txt &&
	grep -q "^  program  *fragmentation  *fragmentation_fixed$" c.txt &&
	compare "$T/frag.log" "$T/fixed.log" c.json &&
	json_check c.json "j[\"verdict\"][\"worse\"] == \"A\" and j[\"verdict\"][\"measure\"] == \"stranded_free_bytes\"" &&
	json_check c.json "j[\"verdict\"][\"a\"] > 16 * 2**20 and j[\"verdict\"][\"b\"] < 2**20" &&
	json_check c.json "[r[\"failures\"] for r in j[\"runs\"]] == [1, 0]" &&
	json_check c.json "j[\"runs\"][0][\"snapshot\"][\"holes\"] >= 8000 and j[\"runs\"][1][\"snapshot\"][\"holes\"] < 16" &&
	json_check c.json "j[\"runs\"][0][\"snapshot\"][\"when\"] == \"allocation-failure\" and j[\"runs\"][1][\"snapshot\"][\"when\"] == \"end\""
'

test_expect 'the other order names B, and two pool runs fragmented the same' '
	compare "$T/fixed.log" "$T/frag.log" c.json &&
	json_check c.json "j[\"verdict\"][\"worse\"] == \"B\"" &&
	rc=0 && "$ANALYZE" fragmentation --compare --json "$T/fixed.log" "$T/fixed2.log" >s.json || rc=$? &&
	test $rc = 0 &&
	json_check s.json "j[\"verdict\"][\"worse\"] is None and [r[\"failures\"] for r in j[\"runs\"]] == [0, 0]" &&
	"$ANALYZE" fragmentation --compare "$T/fixed.log" "$T/fixed2.log" >s.txt &&
	grep -q "fragmented about the same" s.txt
'

JEMALLOC=$(ls /usr/lib/*/libjemalloc.so.2 /usr/lib64/libjemalloc.so.2 2>/dev/null | head -n 1)
if [ -n "$JEMALLOC" ]; then
test_expect 'glibc next to jemalloc: the allocator, its statistics, its free space, holes compared' '
	rc=0 && "$SPY" --allocator jemalloc --no-report -o je.log "$TOP/demos/fragmentation_fixed" >out 2>err || rc=$? &&
	test $rc = 1 &&
	compare "$T/fixed.log" je.log c.json &&
	json_check c.json "[r[\"allocator\"] for r in j[\"runs\"]] == [\"glibc\", \"jemalloc\"]" &&
	json_check c.json "\"jemalloc\" not in j[\"runs\"][0][\"snapshot\"] and j[\"runs\"][1][\"snapshot\"][\"jemalloc\"][\"mapped\"] >= 2**20" &&
	json_check c.json "j[\"runs\"][1][\"snapshot\"][\"jemalloc\"][\"allocated\"] > 0 and j[\"runs\"][1][\"snapshot\"][\"footprint\"] == j[\"runs\"][1][\"snapshot\"][\"jemalloc\"][\"mapped\"]" &&
	json_check c.json "j[\"runs\"][1][\"snapshot\"][\"holes_modelled\"] and j[\"runs\"][0][\"snapshot\"][\"holes_modelled\"]" &&
	json_check c.json "(lambda s: s[\"holes\"] == s[\"jemalloc\"][\"free_regions\"] + s[\"jemalloc\"][\"free_extents\"] > 0 and s[\"free_bytes\"] == s[\"jemalloc\"][\"free_region_bytes\"] + s[\"jemalloc\"][\"free_extent_bytes\"])(j[\"runs\"][1][\"snapshot\"])" &&
	json_check c.json "j[\"verdict\"][\"measure\"] == \"stranded_free_bytes\" and [r[\"failures\"] for r in j[\"runs\"]] == [0, 1]" &&
	"$ANALYZE" fragmentation --compare "$T/fixed.log" je.log >c.txt || : &&
	grep -q "^  allocator  *glibc  *jemalloc$" c.txt &&
	grep -q "^  jemalloc mapped  *-  *[0-9.]* MiB$" c.txt &&
	grep -q "^  holes  *[0-9]*  *[0-9]*$" c.txt &&
	"$ANALYZE" fragmentation je.log >f.txt || : &&
	grep -q "^  jemalloc says allocated" f.txt &&
	grep -q "^  footprint .*(jemalloc)$" f.txt &&
	grep -q "^  holes  *[0-9]* free regions in slabs" f.txt &&
	fits c.txt && fits f.txt
'

cat >"$TEST_DIR/slabs.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>

/* 20000 blocks of 100 bytes; "holes" frees every other one (half of each
 * slab's regions free), "packed" frees the second half (whole slabs). */
int main(int argc, char **argv)
{
	static void *p[20000];
	int holes = argc > 1 && argv[1][0] == 'h';
	for (int i = 0; i < 20000; i++)
		p[i] = malloc(100);
	for (int i = 0; i < 20000; i++)
		if (holes ? i % 2 : i >= 10000)
			free(p[i]);
	puts("done");
	return 0;
}
CEOF

# je_regions LOG: the free regions in jemalloc's slabs at the end (the
# command's status, 1 when the heap is badly fragmented, in LOG.rc)
je_regions() {
	local rc=0
	"$ANALYZE" fragmentation --json "$1" >"$1.json" || rc=$?
	echo $rc >"$1.rc" && [ $rc -le 1 ] &&
	python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print([s for s in j[\"snapshots\"] if s[\"when\"] == \"end\"][0][\"jemalloc\"][\"free_regions\"])" "$1.json"
}

test_expect 'jemalloc: every other block freed leaves free regions in its slabs; half freed in one piece leaves few' '
	gcc -O0 -o slabs "$TEST_DIR/slabs.c" &&
	"$SPY" --allocator jemalloc --no-report --opt quarantine_mb=0 -o h.log ./slabs holes >out &&
	"$SPY" --allocator jemalloc --no-report --opt quarantine_mb=0 -o p.log ./slabs packed >out &&
	h=$(je_regions h.log) && p=$(je_regions p.log) && say "free regions: $h with holes, $p packed" &&
	test "$h" -ge 9000 && test "$p" -lt 1000 &&
	say "jemalloc: the slabs left half used are a fragmentation finding (status 1); the ones freed whole are not" &&
	test "$(cat h.log.rc)" = 1 && test "$(cat p.log.rc)" = 0 &&
	{ "$ANALYZE" report --json h.log >hr.json || :; } &&
	{ "$ANALYZE" report --json p.log >pr.json || :; } &&
	json_check hr.json "[(f[\"details\"][\"allocator\"], f[\"details\"][\"free_regions\"] >= 9000) for f in j[\"findings\"] if f[\"kind\"] == \"fragmentation\"] == [(\"jemalloc\", True)]" &&
	json_check pr.json "not [f for f in j[\"findings\"] if f[\"kind\"] == \"fragmentation\"]"
'
else
test_skip 'glibc next to jemalloc' 'libjemalloc.so.2 is not installed'
fi

test_expect 'heap_every=1: snapshots over time, in JSON and as a table' '
	rc=0 && "$ANALYZE" fragmentation --json "$T/frag_every.log" >f.json || rc=$? &&
	test $rc = 1 &&
	json_check f.json "j[\"series_total\"] >= 3 and len(j[\"series\"]) == j[\"series_total\"]" &&
	json_check f.json "all(s[\"when\"] == \"interval\" for s in j[\"series\"])" &&
	json_check f.json "all(a[\"time_ns\"] < b[\"time_ns\"] for a, b in zip(j[\"series\"], j[\"series\"][1:]))" &&
	json_check f.json "all(s[\"glibc\"][\"arena\"] > 0 and s[\"rss\"] > 0 for s in j[\"series\"])" &&
	json_check f.json "j[\"series\"][0][\"live_bytes\"] < max(s[\"live_bytes\"] for s in j[\"series\"])" &&
	"$ANALYZE" fragmentation "$T/frag_every.log" >f.txt || : &&
	grep -q "^over time: [0-9]* snapshots (heap_every)" f.txt &&
	grep -q "^ *[0-9.]* s  *[0-9.]* [KM]iB" f.txt &&
	fits f.txt
'

test_expect 'without heap_every: no interval snapshot in the trace or the output' '
	"$ANALYZE" dump "$T/frag.log" >d.txt &&
	n=$(grep -c " heap-info " d.txt) && say "heap-info records: $n" &&
	test "$n" -le 2 &&
	rc=0 && "$ANALYZE" fragmentation --json "$T/frag.log" >f.json || rc=$? &&
	test $rc = 1 &&
	json_check f.json "j[\"series_total\"] == 0 and j[\"series\"] == []" &&
	"$ANALYZE" fragmentation "$T/frag.log" >f.txt || : &&
	! grep -q "over time" f.txt &&
	fits f.txt
'

test_expect 'heap_every keeps a real program output and status' '
	seq 200000 | sed "s/^/line /" >in.txt &&
	SPY_OPTIONS=heap_every=1 same_output sort sort -r "$PWD/in.txt" &&
	"$ANALYZE" fragmentation --json traced/trace.sort.*.log >f.json &&
	json_check f.json "j[\"series_total\"] >= 1"
'

# svg_ids FILE: the ids of FILE's svg elements and their data, one a line.
svg_ids() {
	python3 - "$1" <<-'PY'
	import sys, xml.dom.minidom
	d = xml.dom.minidom.parse(sys.argv[1])
	for e in d.getElementsByTagName("svg"):
	    if e.getAttribute("id"):
	        print(e.getAttribute("id"), e.getAttribute("data-holes") or e.getAttribute("data-snapshots"))
	PY
}

test_expect '--svg: the heap as blocks and holes, and the series when recorded' '
	rc=0 && "$ANALYZE" fragmentation --svg "$T/frag_every.log" >e.svg || rc=$? &&
	test $rc = 1 &&
	"$ANALYZE" fragmentation --json "$T/frag_every.log" >e.json || : &&
	n=$(python3 -c "import json; print(json.load(open(\"e.json\"))[\"series_total\"])") &&
	svg_ids e.svg >ids && cat ids &&
	grep -q "^heap-over-time $n$" ids &&
	h=$(sed -n "s/^heap-picture //p" ids) && test "$h" -ge 2000 &&
	"$ANALYZE" fragmentation --svg "$T/frag.log" >p.svg || : &&
	svg_ids p.svg >ids &&
	grep -q "^heap-picture " ids && ! grep -q "^heap-over-time" ids &&
	"$ANALYZE" report --html -o e.html "$T/frag_every.log" >/dev/null || : &&
	grep -q "id=\"heap-over-time\" .*data-snapshots=\"$n\"" e.html &&
	"$ANALYZE" report --html -o p.html "$T/frag.log" >/dev/null || : &&
	grep -q "id=\"heap-picture\"" p.html && ! grep -q "heap-over-time" p.html
'

test_expect 'every text output of analyze fragmentation fits 80 columns' '
	"$ANALYZE" fragmentation "$T/frag.log" >a.txt || : &&
	"$ANALYZE" fragmentation "$T/fixed.log" >b.txt &&
	"$ANALYZE" fragmentation --compare "$T/frag.log" "$T/fixed.log" >c.txt || : &&
	test -s a.txt && test -s b.txt && test -s c.txt &&
	fits a.txt && fits b.txt && fits c.txt
'

test_expect 'bad input to --compare: a one-line error and status 2' '
	rc=0 && "$ANALYZE" fragmentation --compare "$T/frag.log" >out 2>err || rc=$? &&
	test $rc = 2 && grep -q "needs two traces" err &&
	printf "not a trace" >junk.log &&
	rc=0 && "$ANALYZE" fragmentation --compare "$T/frag.log" junk.log >out 2>err || rc=$? &&
	test $rc = 2 && one_line err && ! test -s out &&
	rc=0 && "$ANALYZE" fragmentation --compare missing.log "$T/frag.log" >out 2>err || rc=$? &&
	test $rc = 2 && one_line err && grep -q "missing.log" err &&
	head -c 3000 "$T/frag.log" >cut.log &&
	rc=0 && "$ANALYZE" fragmentation --compare --json cut.log "$T/fixed.log" >out 2>err || rc=$? &&
	say "truncated trace: status $rc" && test $rc -le 2 &&
	rc=0 && "$ANALYZE" fragmentation --compare --svg "$T/frag.log" "$T/fixed.log" >out 2>err || rc=$? &&
	test $rc = 2 && one_line err && ! test -s out &&
	rc=0 && "$ANALYZE" heap --compare "$T/frag.log" "$T/fixed.log" >out 2>err || rc=$? &&
	test $rc = 2 && grep -q "is for fragmentation" err
'

test_done
