#!/bin/bash
# t540: fragmentation. The fragmentation demo's 24 MB malloc fails under
# its address-space limit: an allocation-failure finding at that line with
# the heap's state, and a fragmentation finding (thousands of ~4 KB holes);
# the pool variant gets neither; analyze fragmentation shows the numbers.
. "$(dirname "$0")/lib.sh"

L_BIG=$(grep -n -F "big = malloc(BIG);" "$TOP/demos/fragmentation.c" | cut -d: -f1)

kind() { echo "[x for x in j[\"findings\"] if x[\"kind\"] == \"$1\"]"; }

test_expect 'fragmentation demo: status kept, allocation-failure at the malloc line, fragmentation' '
	rc=0 && SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$TOP/demos/fragmentation" >out || rc=$? &&
	test $rc = 1 &&
	grep -q "malloc(24 MB) failed" out &&
	report_json t.log &&
	json_check t.log.json "len($(kind allocation-failure)) == 1" &&
	json_check t.log.json "($(kind allocation-failure))[0][\"details\"][\"size\"] == 24 << 20" &&
	json_check t.log.json "($(kind allocation-failure))[0][\"details\"][\"as_limit\"] > 0" &&
	json_check t.log.json "(\"main\", $L_BIG) == [(fr[\"function\"], fr[\"line\"]) for fr in ($(kind allocation-failure))[0][\"stacks\"][0][\"frames\"]][0]" &&
	json_check t.log.json "\"cause\" not in ($(kind allocation-failure))[0][\"details\"]" &&
	json_check t.log.json "\"brk heap\" in ($(kind allocation-failure))[0][\"explanation\"] and \"jemalloc\" not in ($(kind allocation-failure))[0][\"fix\"]" &&
	json_check t.log.json "len($(kind fragmentation)) == 1" &&
	json_check t.log.json "($(kind fragmentation))[0][\"details\"][\"holes\"] >= 8000" &&
	json_check t.log.json "($(kind fragmentation))[0][\"details\"][\"largest_hole\"] < 8192"
'

test_expect 'analyze fragmentation: the snapshot at the failure, in JSON and as a strip' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$TOP/demos/fragmentation" >out || : &&
	rc=0 && "$ANALYZE" fragmentation --json t.log >f.json || rc=$? &&
	test $rc = 1 &&
	json_check f.json "j[\"snapshots\"][0][\"when\"] == \"allocation-failure\" and j[\"snapshots\"][0][\"size\"] == 24 << 20" &&
	json_check f.json "j[\"snapshots\"][0][\"free_bytes\"] > 30 << 20 and j[\"snapshots\"][0][\"external_fragmentation\"] > 0.9" &&
	json_check f.json "j[\"snapshots\"][0][\"fragmented\"] and j[\"snapshots\"][0][\"glibc\"][\"arena\"] > 30 << 20" &&
	"$ANALYZE" fragmentation t.log >f.txt || : &&
	grep -q "^when malloc(25165824) failed:" f.txt &&
	grep -q "^  \[[-#+.]\{64\}\]" f.txt
'

L_TMP=$(grep -n -F "tmp[i] = malloc(TMP_SIZE);" "$TOP/demos/fragmentation.c" | cut -d: -f1)
test_expect 'analyze heap: totals, and the top allocation sites by bytes and by blocks' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$TOP/demos/fragmentation" >out || : &&
	"$ANALYZE" heap --json t.log >h.json &&
	json_check h.json "j[\"calls_by_function\"][\"malloc\"] >= 16384 and j[\"peak_blocks\"] >= 16384" &&
	json_check h.json "j[\"top_by_bytes\"][0][\"blocks\"] == 8192 and j[\"top_by_bytes\"][0][\"frames\"][0][\"line\"] == $L_TMP" &&
	json_check h.json "j[\"top_by_blocks\"][0][\"blocks\"] == 8192" &&
	"$ANALYZE" heap t.log >h.txt &&
	grep -q "^top allocation sites by bytes:" h.txt
'

# sites_apart FILE: in each top list of `analyze heap`, no two rows show
# the same frames.
sites_apart() {
	python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
bad = 0
for part in text.split("\ntop allocation sites by ")[1:]:
    rows = re.split(r"\n *\d+\. [^\n]*", part)[1:]
    frames = [r.strip() for r in rows]
    alike = len(frames) - len(set(frames))
    print(part.split(":")[0], len(frames), "rows,", alike, "alike")
    bad += alike or len(frames) < 2
sys.exit(1 if bad else 0)
PY
}

cat >sites.c <<'EOF'
#include <stdlib.h>
static void *kept[16];
static int n;
/* Four calls deep, so that the rows part only below the frames a row
 * shows at first. */
__attribute__((noinline)) static void grab(size_t size) { kept[n++] = malloc(size); }
__attribute__((noinline)) static void two(size_t size) { grab(size); }
__attribute__((noinline)) static void three(size_t size) { two(size); }
__attribute__((noinline)) static void four(size_t size) { three(size); }
int main(void)
{
	four(100);
	four(100);
	four(100);
	four(100);
	kept[n++] = malloc(70); kept[n++] = malloc(70);
	while (n)
		free(kept[--n]);
	return 0;
}
EOF

test_expect 'analyze heap: rows that part further out show frames until they read apart; two calls on one line are one row' '
	gcc -std=gnu11 -O0 -g -o sites "$TEST_DIR/sites.c" &&
	SPY_OPTIONS=out=$PWD/s.log LD_PRELOAD=$LIBSPY ./sites &&
	"$ANALYZE" heap s.log >h.txt && sites_apart h.txt &&
	test "$(grep -c "^    #4  main at sites.c:1[2-5]$" h.txt)" = 8 &&
	grep -q "^ *[0-9]*\. 140 bytes in 2 blocks$" h.txt &&
	"$ANALYZE" heap --json s.log >h.json &&
	json_check h.json "[s[\"blocks\"] for s in j[\"top_by_bytes\"] if s[\"bytes\"] == 140] == [2]" &&
	SPY_OPTIONS=out=$PWD/sh.log LD_PRELOAD=$LIBSPY "$TOP/demos/stack_heap" >/dev/null &&
	"$ANALYZE" heap sh.log >sh.txt && sites_apart sh.txt
'

test_expect 'the pool variant: the request fits, no allocation-failure, no fragmentation' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$TOP/demos/fragmentation_fixed" >out &&
	grep -q "malloc(24 MB) succeeded" out &&
	report_json t.log &&
	json_check t.log.json "not $(kind allocation-failure) and not $(kind fragmentation)" &&
	"$ANALYZE" fragmentation t.log >f.txt
'

test_expect 'a correct program under a tight limit that checks for NULL still gets allocation-failure' '
	cat >"$TEST_DIR/nomem.c" <<-CEOF &&
	#include <stdio.h>
	#include <stdlib.h>
	#include <sys/resource.h>
	int main(void)
	{
		struct rlimit r = { 1UL << 30, 1UL << 30 };
		setrlimit(RLIMIT_AS, &r);
		void *p = malloc(2UL << 30);
		puts(p ? "got it" : "no memory, as expected");
		return 0;
	}
	CEOF
	gcc -O0 -g -o nomem "$TEST_DIR/nomem.c" &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./nomem >out &&
	grep -q "no memory, as expected" out &&
	report_json t.log &&
	json_check t.log.json "len($(kind allocation-failure)) == 1 and not $(kind fragmentation)"
'

test_expect 'a terabyte asked for without a limit: the kernel refused a mapping of its own, not the holes of the brk heap' '
	cat >"$TEST_DIR/tera.c" <<-CEOF &&
	#include <stdio.h>
	#include <stdlib.h>
	int main(void)
	{
		void *p = malloc((size_t)1 << 40);
		puts(p ? "got it" : "no terabyte");
		free(p);
		return 0;
	}
	CEOF
	gcc -O0 -g -o tera "$TEST_DIR/tera.c" &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./tera >out &&
	grep -qx "no terabyte" out &&
	report_json t.log &&
	json_check t.log.json "(lambda f: \"mapping of its own\" in f[\"explanation\"] and \"none could take\" not in f[\"explanation\"] and \"holes\" not in f[\"fix\"])(($(kind allocation-failure))[0])"
'

JEMALLOC=$(ls /usr/lib/*/libjemalloc.so.2 /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2 2>/dev/null | head -n 1)
if [ -n "$JEMALLOC" ]; then
test_expect 'malloc(-1) and new of 2^61 bytes: the size is the bug, not the heap (impossible-size, no fragmentation advice)' '
	cat >huge.cc <<-EOF &&
	#include <cstdio>
	#include <cstdlib>
	#include <new>
	char *volatile sink;
	int main(int argc, char **)
	{
		int len = argc - 2;              /* -1 */
		sink = (char *)malloc(len);
		try { sink = new char[(size_t)1 << (60 + argc)]; }
		catch (const std::bad_alloc &) { puts("bad_alloc"); }
		return sink != 0;
	}
	EOF
	g++ -g -O0 -o huge huge.cc &&
	SPY_OPTIONS=out=$PWD/h.log LD_PRELOAD=$LIBSPY ./huge >out && grep -qx bad_alloc out &&
	report_json h.log &&
	json_check h.log.json "[x[\"details\"].get(\"cause\") for x in $(kind allocation-failure)] == [\"impossible-size\"] * 2" &&
	json_check h.log.json "($(kind allocation-failure))[0][\"details\"][\"size\"] == 2 ** 64 - 1" &&
	json_check h.log.json "\"-1\" in ($(kind allocation-failure))[0][\"explanation\"]" &&
	json_check h.log.json "not $(kind fragmentation)"
'

test_expect 'spy --allocator jemalloc: the same program on jemalloc, recorded the same way' '
	rc=0 && "$SPY" --allocator jemalloc --no-report -o t.log "$TOP/demos/fragmentation_fixed" >out 2>err || rc=$? &&
	test $rc = 1 &&
	grep -q "malloc(24 MB) failed" out &&
	report_json t.log &&
	json_check t.log.json "len($(kind allocation-failure)) == 1 and j[\"heap\"][\"peak_blocks\"] >= 8192" &&
	"$ANALYZE" fragmentation --json t.log >f.json || : &&
	json_check f.json "j[\"snapshots\"][0][\"glibc\"][\"arena\"] < (1 << 20)"
'

test_expect 'jemalloc: the failure is explained by the pages jemalloc keeps, and the fix it gives works' '
	rc=0 && "$SPY" --allocator jemalloc --no-report -o t.log "$TOP/demos/fragmentation_fixed" >out 2>err || rc=$? &&
	test $rc = 1 && report_json t.log &&
	json_check t.log.json "(lambda f: f[\"explanation\"].startswith(\"jemalloc could not give\") and \"brk heap\" not in f[\"explanation\"] and \"retain:false\" in f[\"fix\"])(($(kind allocation-failure))[0])" &&
	conf=$(python3 -c "import json, re, sys; print(re.search(r\"MALLOC_CONF=(\\S+)\", [f for f in json.load(open(sys.argv[1]))[\"findings\"] if f[\"kind\"] == \"allocation-failure\"][0][\"fix\"]).group(1))" t.log.json) &&
	say "MALLOC_CONF=$conf" &&
	MALLOC_CONF=$conf "$SPY" --allocator jemalloc --no-report -o ok.log "$TOP/demos/fragmentation_fixed" >out 2>err &&
	grep -q "malloc(24 MB) succeeded" out
'
else
test_skip 'spy --allocator jemalloc' 'libjemalloc.so.2 is not installed'
fi

test_expect 'spy --allocator refuses an allocator it does not know' '
	rc=0 && "$SPY" --allocator tcmalloc true 2>err || rc=$? &&
	test $rc = 2 && grep -q "unknown allocator" err
'

cat >"$TEST_DIR/arena.c" <<'CEOF'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#define N 4000
static char *keep[N];
static void *work(void *arg)
{
	(void)arg;
	for (int i = 0; i < N; i++)
		keep[i] = malloc(1000);
	for (int i = 0; i < N; i += 2)
		free(keep[i]);          /* every other block: a hole each */
	return NULL;
}
int main(int argc, char **argv)
{
	pthread_t t;
	if (argc > 1) {                 /* in a thread: its own arena */
		pthread_create(&t, NULL, work, NULL);
		pthread_join(t, NULL);
	} else {
		work(NULL);             /* in main: the brk heap */
	}
	puts("done");
	return 0;
}
CEOF

test_expect 'holes in a thread'\''s arena are counted apart from the brk heap, both ways' '
	gcc -O0 -g -pthread -o arena "$TEST_DIR/arena.c" &&
	SPY_OPTIONS=out=$PWD/t.log:quarantine_mb=0 LD_PRELOAD=$LIBSPY ./arena thread >out &&
	"$ANALYZE" fragmentation --json t.log >t.json; test $? -le 1 &&
	json_check t.json "(lambda f: f[\"thread_arenas\"][\"spans\"] == 1 and f[\"thread_arenas\"][\"holes\"] >= 1990 and f[\"thread_arenas\"][\"largest_hole\"] < 1100 and f[\"holes\"] < 10 and f[\"heap_bytes\"] < 1 << 20)(j[\"snapshots\"][-1])" &&
	"$ANALYZE" fragmentation t.log >t.txt; grep -q "other arenas  1 heap of threads" t.txt &&
	SPY_OPTIONS=out=$PWD/m.log:quarantine_mb=0 LD_PRELOAD=$LIBSPY ./arena >out &&
	"$ANALYZE" fragmentation --json m.log >m.json; test $? -le 1 &&
	json_check m.json "(lambda f: f[\"thread_arenas\"][\"spans\"] == 0 and f[\"holes\"] >= 1990)(j[\"snapshots\"][-1])"
'

test_done
