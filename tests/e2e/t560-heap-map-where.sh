#!/bin/bash
# t560: analyze map shows the process map at the start and at the end, with
# the recorded heap blocks in the region that holds them (the brk heap,
# a big mmap'd block, another thread's arena) and each thread's stack
# labelled; analyze where names the region and the block of an address,
# with its stacks and the blocks that held the address before it.
. "$(dirname "$0")/lib.sh"

DEMOS=$TOP/demos
HEAPMAP=$TEST_DIR/heapmap

# The fixture, traced with the quarantine off so that a freed address is
# handed out again at once. Writes hm.out (its output) and hm.log.
run_heapmap() {
	{ [ -x "$HEAPMAP" ] ||
	  gcc -std=gnu11 -O0 -g -pthread -o "$HEAPMAP" "$FIXTURES/heapmap.c"; } &&
	SPY_OPTIONS=out=hm.log:quarantine_mb=0 traced "$HEAPMAP" >hm.out &&
	grep -q "^done 1" hm.out
}

# printed NAME: the address the fixture printed for NAME.
printed() { awk -v n="$1" '$1 == n {print $2}' hm.out; }

# region_of ADDR: a Python expression for the end map's region holding ADDR.
region_of() {
	echo "[r for r in j[\"regions\"] if int(r[\"start\"], 16) <= $1 < int(r[\"end\"], 16)][0]"
}

# fits_80 FILE: no line of FILE is wider than 80 columns.
fits_80() {
	! awk 'length > 80 { print FILENAME ":" FNR ": " length " columns"; bad = 1 } END { exit !bad }' "$1"
}

test_expect 'heapmap: the same output with libspy, and a map recorded at the end' '
	gcc -std=gnu11 -O0 -g -pthread -o "$HEAPMAP" "$FIXTURES/heapmap.c" &&
	"$HEAPMAP" | sed "s/0x[0-9a-f]*/ADDR/" >plain.out &&
	run_heapmap && sed "s/0x[0-9a-f]*/ADDR/" hm.out >traced.out &&
	cmp plain.out traced.out &&
	test "$(printed first)" = "$(printed third)" &&
	"$ANALYZE" dump hm.log >dump.txt && grep -q " end-map " dump.txt &&
	"$ANALYZE" map --json hm.log >map.json &&
	json_check map.json "j[\"end_recorded\"] and j[\"start_regions\"] and j[\"regions\"]"
'

test_expect 'map: brk heap, big block and the thread'\''s arena, each with its blocks' '
	run_heapmap && "$ANALYZE" map --json hm.log >map.json &&
	main=$(python3 -c "import json; print([r for r in json.load(open(\"map.json\"))[\"regions\"] if r[\"main_stack\"]][0][\"thread\"])") &&
	heap=$(region_of "$(printed first)") &&
	json_check map.json "$heap[\"kind\"] == \"heap\" and $heap[\"blocks\"][\"live\"] >= 1 and $heap[\"blocks\"][\"freed\"] >= 2 and $heap[\"blocks\"][\"by_thread\"][0][\"thread\"] == $main" &&
	big=$(region_of "$(printed big)") &&
	json_check map.json "$big[\"kind\"] == \"mmap\" and $big[\"blocks\"][\"big\"] >= 1 and $big[\"blocks\"][\"live_bytes\"] >= 4 << 20 and \"big blocks\" in $big[\"description\"]" &&
	arena=$(region_of "$(printed thread_block)") &&
	json_check map.json "$arena[\"kind\"] == \"mmap\" and $arena[\"blocks\"][\"live\"] == 1 and $arena[\"blocks\"][\"by_thread\"][0][\"thread\"] != $main and \"arena of thread\" in $arena[\"description\"]" &&
	json_check map.json "\"arena\" not in $heap[\"description\"] or \"main arena\" in $heap[\"description\"]" &&
	"$ANALYZE" map hm.log >map.txt && fits_80 map.txt &&
	grep "^At the start" map.txt && grep "^At the end" map.txt &&
	grep "heap .*brk heap" map.txt && grep "malloc arena of thread [0-9]" map.txt &&
	grep "blocks: 1 live (24 B), 2 freed (48 B)" map.txt
'

test_expect 'map: libspy'\''s own memory is labelled, no program block is in it, the big block is not' '
	run_heapmap && "$ANALYZE" map --json hm.log >map.json &&
	json_check map.json "[r for r in j[\"regions\"] if r[\"kind\"] == \"libspy\"] and [r for r in j[\"start_regions\"] if r[\"kind\"] == \"libspy\"]" &&
	json_check map.json "not [r for r in j[\"regions\"] if r[\"kind\"] == \"libspy\" and r[\"blocks\"][\"live\"] + r[\"blocks\"][\"freed\"]]" &&
	big=$(region_of "$(printed big)") && arena=$(region_of "$(printed thread_block)") &&
	json_check map.json "$big[\"kind\"] == \"mmap\" and $arena[\"kind\"] == \"mmap\"" &&
	"$ANALYZE" map hm.log >map.txt && grep -q "libspy  libspy.s, not the program.s" map.txt
'

test_expect 'map: anonymous memory the program mapped is its own; what was there before main is not' '
	run_heapmap && "$ANALYZE" map --json hm.log >map.json &&
	anon=$(region_of "$(printed anon)") &&
	json_check map.json "$anon[\"kind\"] == \"mmap\" and $anon[\"description\"] == \"anonymous memory (mmap)\"" &&
	json_check map.json "[r for r in j[\"regions\"] if r[\"description\"] == \"anonymous, made before main\"]" &&
	json_check map.json "not [r for r in j[\"regions\"] if r[\"description\"] == \"anonymous, made before main\" and r[\"blocks\"][\"live\"] + r[\"blocks\"][\"freed\"]]" &&
	json_check map.json "all(r[\"description\"] == \"anonymous, made before main\" for r in j[\"start_regions\"] if r[\"kind\"] == \"mmap\")"
'

test_expect 'map: each thread'\''s stack is labelled, with the guard below it' '
	run_heapmap && "$ANALYZE" map --json hm.log >map.json &&
	ts=$(region_of "$(printed thread_local)") &&
	ms=$(region_of "$(printed main_local)") &&
	json_check map.json "$ms[\"kind\"] == \"stack\" and $ms[\"main_stack\"] and $ts[\"kind\"] == \"stack\" and not $ts[\"main_stack\"] and $ts[\"thread\"] != $ms[\"thread\"]" &&
	json_check map.json "any(r[\"kind\"] == \"guard\" and r[\"thread\"] == $ts[\"thread\"] and r[\"end\"] == $ts[\"start\"] for r in j[\"regions\"])" &&
	"$ANALYZE" map hm.log >map.txt &&
	grep "stack of thread [0-9]* (main)" map.txt &&
	grep "stack   stack of thread [0-9]*$" map.txt && grep "guard: stack of thread" map.txt
'

test_expect 'map: the pieces of one mapping are one region; the start map has no thread stacks' '
	run_heapmap && "$ANALYZE" map --json hm.log >map.json &&
	json_check map.json "all(not (a[\"end\"] == b[\"start\"] and a[\"kind\"] == b[\"kind\"] and a[\"path\"] == b[\"path\"] and a[\"prot\"] == b[\"prot\"] and a[\"threads\"] == b[\"threads\"]) for a, b in zip(j[\"regions\"], j[\"regions\"][1:]))" &&
	json_check map.json "len([r for r in j[\"regions\"] if r[\"kind\"] == \"text\" and (r[\"path\"] or \"\").endswith(\"/libc.so.6\")]) == 1" &&
	json_check map.json "sum(len(r[\"pieces\"]) for r in j[\"regions\"]) >= len(j[\"regions\"])" &&
	json_check map.json "[r for r in j[\"start_regions\"] if r[\"kind\"] == \"stack\"] == [r for r in j[\"start_regions\"] if r[\"main_stack\"]]"
'

test_expect 'map: a program without threads or big blocks shows none' '
	SPY_OPTIONS=out=d.log traced "$DEMOS/dangling_fixed" >/dev/null &&
	"$ANALYZE" map --json d.log >map.json &&
	json_check map.json "not any(\"arena of thread\" in r[\"description\"] or r[\"blocks\"][\"big\"] for r in j[\"regions\"])" &&
	json_check map.json "[r[\"thread\"] for r in j[\"regions\"] if r[\"kind\"] == \"stack\"] == [j[\"process\"][\"pid\"]]" &&
	json_check map.json "sum(r[\"blocks\"][\"live\"] + r[\"blocks\"][\"freed\"] for r in j[\"regions\"] if r[\"kind\"] == \"heap\") >= 1"
'

test_expect 'where: the live block at a reused address, and the two freed before it' '
	run_heapmap && a=$(printed third) &&
	"$ANALYZE" where --json hm.log "$a" >w.json &&
	json_check w.json "j[\"region\"][\"kind\"] == \"heap\" and j[\"block\"][\"size\"] == 24 and j[\"block\"][\"offset\"] == 0 and j[\"block\"][\"live_at_end\"] and j[\"block\"][\"free_stack\"] is None" &&
	json_check w.json "j[\"block\"][\"alloc_stack\"][0][\"function\"] == \"main\" and j[\"block\"][\"alloc_stack\"][0][\"file\"].endswith(\"heapmap.c\")" &&
	json_check w.json "j[\"blocks_total\"] == 3 and len(j[\"earlier_blocks\"]) == 2 and all(b[\"freed\"] and b[\"free_stack\"][0][\"function\"] == \"main\" for b in j[\"earlier_blocks\"])" &&
	json_check w.json "j[\"earlier_blocks\"][0][\"free_stack\"][0][\"line\"] > j[\"earlier_blocks\"][1][\"free_stack\"][0][\"line\"]" &&
	"$ANALYZE" where "$a" hm.log >w.txt && fits_80 w.txt &&
	grep "heap block (still live at the end)" w.txt && grep "main at heapmap.c:" w.txt &&
	grep "before it at this address: 2 blocks" w.txt && ! grep "^  freed by" w.txt
'

test_expect 'where: dangling'\''s block, with its allocation and free stacks' '
	SPY_OPTIONS=out=d.log traced "$DEMOS/dangling" >/dev/null &&
	{ "$ANALYZE" report --json d.log >r.json; test $? = 1; } &&
	a=$(python3 -c "import json; print([f for f in json.load(open(\"r.json\"))[\"findings\"] if f[\"kind\"] == \"use-after-free\"][0][\"details\"][\"address\"])") &&
	in=$(printf "0x%x" $((a + 32))) &&
	"$ANALYZE" where --json "$in" d.log >w.json &&
	json_check w.json "j[\"block\"][\"size\"] == 64 and j[\"block\"][\"offset\"] == 32 and j[\"block\"][\"freed\"] and not j[\"block\"][\"live_at_end\"]" &&
	json_check w.json "any(f[\"function\"] == \"new_player\" for f in j[\"block\"][\"alloc_stack\"]) and any(f[\"function\"] == \"remove_player\" for f in j[\"block\"][\"free_stack\"])" &&
	"$ANALYZE" where d.log "$in" >w.txt && fits_80 w.txt &&
	grep "offset 32" w.txt && grep "new_player at dangling.c" w.txt &&
	grep "^  freed by thread [0-9]* at:" w.txt && grep "remove_player at dangling.c" w.txt
'

test_expect 'where: stack variables say stack, of the right thread' '
	run_heapmap &&
	"$ANALYZE" where --json "$(printed main_local)" hm.log >m.json &&
	"$ANALYZE" where --json "$(printed thread_local)" hm.log >t.json &&
	json_check m.json "j[\"region\"][\"kind\"] == \"stack\" and j[\"region\"][\"main_stack\"] and j[\"block\"] is None" &&
	json_check t.json "j[\"region\"][\"kind\"] == \"stack\" and not j[\"region\"][\"main_stack\"] and j[\"region\"][\"thread\"] and j[\"start_region\"] is None" &&
	"$ANALYZE" where "$(printed thread_local)" hm.log >w.txt &&
	head -n 1 w.txt | grep ": stack, stack of thread [0-9]*$" && grep "bytes below its top" w.txt
'

test_expect 'where: an address in no region says so, in one line' '
	run_heapmap &&
	"$ANALYZE" where 0x10 hm.log >w.txt && one_line w.txt &&
	grep "0x10: not mapped at the start or at the end, and in no heap block" w.txt &&
	"$ANALYZE" where --json hm.log 4096 >w.json &&
	json_check w.json "j[\"region\"] is None and j[\"block\"] is None and j[\"blocks_total\"] == 0" &&
	"$ANALYZE" where "$(printed third)" hm.log >w.txt && ! grep "not mapped at the start or" w.txt
'

test_expect 'where: bad input is a one-line error with status 2, in either order' '
	run_heapmap &&
	{ "$ANALYZE" where 0xzz hm.log >out 2>err; test $? = 2; } && one_line err &&
	grep "'\''0xzz'\'' is not an address" err && test ! -s out &&
	{ "$ANALYZE" where hm.log nothex 2>err; test $? = 2; } && one_line err &&
	grep "'\''nothex'\'' is not an address" err &&
	{ "$ANALYZE" where 0x10 missing.log 2>err; test $? = 2; } && one_line err &&
	{ "$ANALYZE" where hm.log 2>err; test $? = 2; } && one_line err &&
	{ "$ANALYZE" where -- hm.log -5 2>err; test $? = 2; } && one_line err
'

test_expect 'a process killed by a signal leaves its end map; SIGKILL leaves none, and map says so' '
	{ SPY_OPTIONS=out=ab.log traced sh -c "kill -ABRT \$\$"; test $? = 134; } &&
	"$ANALYZE" map --json ab.log >ab.json && json_check ab.json "j[\"end_recorded\"]" &&
	{ SPY_OPTIONS=out=k9.log traced sh -c "kill -KILL \$\$"; test $? = 137; } &&
	"$ANALYZE" map --json k9.log >k9.json &&
	json_check k9.json "not j[\"end_recorded\"] and any(r[\"kind\"] == \"stack\" for r in j[\"regions\"])" &&
	"$ANALYZE" map k9.log >k9.txt && grep "end-of-run map" k9.txt && fits_80 k9.txt
'

# Blocks allocated at 400 different depths: past a few hundred different
# stacks the unwinder maps caches of its own (mmap). Those are libspy's.
cat >"$TEST_DIR/depths.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
static void *keep[400];
__attribute__((noinline)) static void down(int d, int i)
{
	if (d == 0) {
		keep[i] = malloc(16);
		return;
	}
	down(d - 1, i);
	__asm__ volatile("" ::: "memory");
}
int main(int argc, char **argv)
{
	for (int i = 0; i < 400; i++)
		down(i, i);
	for (int i = 0; i < 400; i++)
		free(keep[i]);
	if (argc > 1) /* a mapping of the program's own (read-only: no neighbour merges with it) */
		printf("anon %p\n", mmap(NULL, 3 << 12, PROT_READ,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	puts("done");
	return 0;
}
EOF

test_expect 'map: the unwinder'\''s own mappings are libspy'\''s; the program'\''s mapping stays its own' '
	gcc -O1 -g -o depths "$TEST_DIR/depths.c" &&
	SPY_OPTIONS=out=d.log traced ./depths >out && grep -qx done out &&
	"$ANALYZE" map --json d.log >d.json &&
	json_check d.json "not [r for r in j[\"regions\"] if r[\"description\"] == \"anonymous memory (mmap)\"]" &&
	SPY_OPTIONS=out=m.log traced ./depths map >out && grep -qx done out &&
	"$ANALYZE" map --json m.log >m.json && anon=$(awk "\$1 == \"anon\" {print \$2}" out) &&
	json_check m.json "[(r[\"start\"], r[\"end\"]) for r in j[\"regions\"] if r[\"description\"] == \"anonymous memory (mmap)\"] == [(\"$anon\", hex($anon + (3 << 12)))]"
'

test_done
