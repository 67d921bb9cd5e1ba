#!/bin/bash
# t500: bad frees. A double free and frees of stack, interior and wild
# addresses are findings with the stacks that matter; libspy does not pass
# them on, so the program finishes; correct programs (the fixed demo, our
# own cases, real programs) get no such finding.
. "$(dirname "$0")/lib.sh"

DEMO=$TOP/demos/dangling
line_of() { grep -n -F -- "$2" "$TOP/demos/$1.c" | head -n 1 | cut -d: -f1; }
L_MALLOC=$(line_of dangling "malloc(sizeof *p)")
L_FREE1=$(line_of dangling "free(p);            /* the caller")
L_DOUBLE=$(line_of dangling "BUG: double free")
L_STACK=$(line_of dangling "BUG: never came from malloc")
L_INTERIOR=$(line_of dangling "BUG: not the start of a block")

# report TRACE: writes TRACE.json with `analyze report --json` (status 0/1).
report() {
	local rc=0
	"$ANALYZE" report --json "$1" >"$1.json" 2>"$1.err" || rc=$?
	[ "$rc" -le 1 ] || { cat "$1.err"; return 1; }
}

# findings_check FILE CODE: runs python CODE over the report FILE (as j,
# with f(kind) listing the findings of a kind and at(stack) the (function,
# line) pairs of a stack); CODE sets ok. Prints the findings when not ok.
findings_check() {
	python3 - "$1" "$2" <<'PY' || { say "check failed: $2"; return 1; }
import json, sys
j = json.load(open(sys.argv[1]))
def f(kind): return [x for x in j["findings"] if x["kind"] == kind]
def at(stack): return [(fr["function"], fr["line"]) for fr in stack["frames"]]
env = {"j": j, "f": f, "at": at}
exec(sys.argv[2], env)
if not env.get("ok"):
    for x in j["findings"]:
        print(x["kind"], x["headline"], json.dumps(x["details"]))
        for s in x["stacks"]:
            print("   ", s["label"], at(s)[:4])
    sys.exit(1)
PY
}

test_expect 'double free: survives, one finding with the three stacks' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMO" --double-free >out 2>err &&
	grep -x "still running after the double free" out &&
	report t.log &&
	findings_check t.log.json "
d = f(\"double-free\")
ok = (len(d) == 1 and len(d[0][\"stacks\"]) == 3 and
d[0][\"details\"][\"passed_on\"] == \"no\" and d[0][\"details\"][\"size\"] == 64 and
(\"double_free\", $L_DOUBLE) in at(d[0][\"stacks\"][0]) and
(\"remove_player\", $L_FREE1) in at(d[0][\"stacks\"][1]) and
(\"new_player\", $L_MALLOC) in at(d[0][\"stacks\"][2]) and
not f(\"invalid-free\"))"
'

test_expect 'invalid frees: a stack address and an interior pointer, each at its line' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMO" --invalid-free >out 2>err &&
	grep -x "still running after the invalid frees" out &&
	report t.log &&
	findings_check t.log.json "
v = f(\"invalid-free\")
kinds = sorted(x[\"details\"][\"address_kind\"] for x in v)
st = [x for x in v if x[\"details\"][\"address_kind\"] == \"stack\"]
it = [x for x in v if x[\"details\"][\"address_kind\"] == \"interior\"]
ok = (kinds == [\"interior\", \"stack\"] and
(\"invalid_free\", $L_STACK) in at(st[0][\"stacks\"][0]) and
(\"invalid_free\", $L_INTERIOR) in at(it[0][\"stacks\"][0]) and
it[0][\"details\"][\"offset\"] == 32 and
(\"new_player\", $L_MALLOC) in at(it[0][\"stacks\"][1]) and
not f(\"double-free\"))"
'

cat >"$TEST_DIR/literal.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
static char name[16] = "global";
int main(int argc, char **argv)
{
	char *s = argc > 1 ? name : "literal";
	free(s);
	puts(s);
	return 0;
}
CEOF

test_expect 'free of a string literal: said to be read-only data; of a writable global: a global variable' '
	gcc -O0 -g -w -o literal "$TEST_DIR/literal.c" &&
	SPY_OPTIONS=out=$PWD/l.log LD_PRELOAD=$LIBSPY ./literal >out && grep -qx literal out &&
	report_json l.log &&
	json_check l.log.json "[x[\"headline\"] for x in j[\"findings\"] if x[\"kind\"] == \"invalid-free\"] == [\"free() of a string literal or other read-only data\"]" &&
	SPY_OPTIONS=out=$PWD/g.log LD_PRELOAD=$LIBSPY ./literal g >out && grep -qx global out &&
	report_json g.log &&
	json_check g.log.json "[x[\"headline\"] for x in j[\"findings\"] if x[\"kind\"] == \"invalid-free\"] == [\"free() of the address of a global or static variable\"]"
'

test_expect 'interior free alone: one invalid-free, and the block is not leaked' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMO" --interior-free >out 2>err &&
	report t.log &&
	findings_check t.log.json "
ok = len(f(\"invalid-free\")) == 1 and not f(\"leak\")"
'

test_expect 'the fixed demo: no bad free, no use after free, no leak' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$TOP/demos/dangling_fixed" >out &&
	report t.log &&
	findings_check t.log.json "
ok = not (f(\"double-free\") or f(\"invalid-free\") or f(\"use-after-free\") or f(\"leak\"))"
'

# Correct uses of the malloc family that a checker could get wrong.
cat >"$TEST_DIR/cases.c" <<'CEOF'
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *shared;
static void *freer(void *arg) { free(arg); free(shared); return NULL; }

int main(void)
{
	/* a realloc chain that grows and shrinks, and realloc(NULL) */
	char *p = realloc(NULL, 1);
	for (size_t n = 2; n < 100000; n *= 3)
		p = realloc(p, n);
	p = realloc(p, 10);
	free(p);
	/* aligned allocations of every kind */
	void *a;
	if (posix_memalign(&a, 4096, 100)) return 1;
	free(a);
	free(aligned_alloc(64, 128));
	free(memalign(256, 1000));
	free(valloc(10));
	/* calloc whose size overflows fails cleanly */
	void *c = calloc(SIZE_MAX / 2, 4);
	if (c) return 2;
	free(NULL);
	/* malloc_usable_size is at least the size asked for */
	char *u = malloc(100);
	if (malloc_usable_size(u) < 100) return 3;
	free(u);
	/* a block allocated in one thread, freed by another */
	pthread_t t;
	shared = malloc(77);
	if (pthread_create(&t, NULL, freer, malloc(55))) return 4;
	pthread_join(t, NULL);
	/* reallocarray, and realloc to 0 */
	int *v = reallocarray(NULL, 10, sizeof(int));
	v = reallocarray(v, 1000, sizeof(int));
	/* reallocarray whose size overflows fails cleanly, v untouched */
	if (reallocarray(v, SIZE_MAX / 4, 8)) return 5;
	free(v);
	puts("cases done");
	return 0;
}
CEOF

test_expect 'realloc chains, aligned blocks, calloc and reallocarray overflow, free(NULL), frees by another thread: no finding but the two calls that failed' '
	gcc -O1 -g -pthread -o cases "$TEST_DIR/cases.c" &&
	same_output cases "$PWD/cases" &&
	grep -x "cases done" plain.out &&
	for t in traced/trace.*.log; do report $t || return 1; done &&
	for t in traced/trace.*.log; do
		findings_check $t.json "ok = [(f[\"kind\"], f[\"details\"].get(\"cause\"), f[\"details\"].get(\"count\"), f[\"details\"].get(\"each\")) for f in j[\"findings\"]] == [(\"allocation-failure\", \"calloc-overflow\", 2**63 - 1, 4), (\"allocation-failure\", \"reallocarray-overflow\", 2**62 - 1, 8)]" || return 1
	done
'

# Blocks made before libspy started (by a preloaded library's constructor,
# maybe before libspy's own) are freed by the program: never a bad free.
cat >"$TEST_DIR/early.c" <<'CEOF'
#include <stdlib.h>
#include <string.h>
void *early_blocks[8];
__attribute__((constructor)) static void early(void)
{
	for (int i = 0; i < 8; i++)
		early_blocks[i] = strdup("made in a constructor");
}
CEOF
cat >"$TEST_DIR/uses_early.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
extern void *early_blocks[8];
int main(void)
{
	for (int i = 0; i < 8; i++) {
		early_blocks[i] = realloc(early_blocks[i], 100);
		free(early_blocks[i]);
	}
	puts("freed the early blocks");
	return 0;
}
CEOF

test_expect 'blocks allocated before libspy started: freed and reallocated without a finding' '
	gcc -shared -fPIC -o libearly.so "$TEST_DIR/early.c" &&
	gcc -o uses_early "$TEST_DIR/uses_early.c" -L. -learly -Wl,-rpath,"$PWD" &&
	./uses_early >plain.out &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD="$PWD/libearly.so $LIBSPY" ./uses_early >out &&
	cmp plain.out out &&
	report t.log &&
	findings_check t.log.json "ok = not (f(\"double-free\") or f(\"invalid-free\") or f(\"leak\"))"
'

# Real programs: their own output and status, and no bad free blamed.
real_clean() {
	for t in traced/trace.*.log; do
		report "$t" &&
		findings_check "$t.json" "ok = not [x for x in j[\"findings\"] if x[\"kind\"] in (\"double-free\", \"invalid-free\", \"use-after-free\")]" ||
		return 1
	done
}

test_expect 'python3 with threads: no bad free, no use after free' '
	same_output python3 python3 "$FIXTURES/threads.py" && real_clean
'
test_expect 'perl: no bad free, no use after free' '
	same_output perl perl "$FIXTURES/script.pl" && real_clean
'
test_expect 'sqlite3: no bad free, no use after free' '
	same_output sqlite3 sh -c "sqlite3 :memory: <\"\$1\"" sh "$FIXTURES/queries.sql" && real_clean
'
test_expect 'git: no bad free, no use after free' '
	export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null &&
	same_output git sh -c "git init -q repo && cd repo && echo x >a && git add a && git -c user.name=A -c user.email=a@b commit -qm m && git log --format=%s" && real_clean
'
test_expect 'gcc compiling a file: no bad free, no use after free' '
	echo "int main(void) { return 0; }" >m.c &&
	same_output gcc gcc -O1 -c -o /dev/null "$PWD/m.c" && real_clean
'

test_done
