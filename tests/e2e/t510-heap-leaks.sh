#!/bin/bash
# t510: leaks at exit. Blocks no pointer reaches are "definitely lost" (a
# leak finding at their allocation line), what they point to "indirectly
# lost", what a global or a live block still points to "still reachable";
# the C library's own buffers are never blamed; correct programs are clean.
. "$(dirname "$0")/lib.sh"

cat >"$TEST_DIR/leaky.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *next; char pad[40]; };
static struct node *kept;        /* a global: still reachable */

static void lose(void)
{
	struct node *head = malloc(sizeof *head);   /* LOST: definitely */
	head->next = malloc(sizeof *head);          /* LOST: indirectly */
	head->next->next = NULL;
}

int main(int argc, char **argv)
{
	kept = malloc(sizeof *kept);                /* KEPT */
	kept->next = malloc(sizeof *kept);          /* KEPT too, through kept */
	kept->next->next = NULL;
	if (argc > 1 && !strcmp(argv[1], "leak"))
		lose();
	printf("done\n");                           /* stdout's buffer: not ours */
	return 0;
}
CEOF
build() { gcc -O0 -g -o leaky "$TEST_DIR/leaky.c"; }
line_of() { grep -n -F -- "$1" "$TEST_DIR/leaky.c" | head -n 1 | cut -d: -f1; }
L_LOST=$(line_of "LOST: definitely")

leaks_json() {
	local rc=0
	"$ANALYZE" leaks --json "$1" >"$1.leaks" 2>"$1.err" || rc=$?
	[ "$rc" -le 1 ] || { cat "$1.err"; return 1; }
	echo "$rc" >"$1.leaks.rc"
}
report_json() {
	local rc=0
	"$ANALYZE" report --json "$1" >"$1.json" 2>"$1.err" || rc=$?
	[ "$rc" -le 1 ] || { cat "$1.err"; return 1; }
}

test_expect 'a lost list: one definitely lost (at its line), one indirectly, the rest reachable' '
	build &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./leaky leak >out &&
	grep -x done out &&
	leaks_json t.log && test "$(cat t.log.leaks.rc)" = 1 &&
	json_check t.log.leaks "(j[\"scanned\"] and
		j[\"totals\"][\"definitely lost\"] == {\"blocks\": 1, \"bytes\": 48} and
		j[\"totals\"][\"indirectly lost\"] == {\"blocks\": 1, \"bytes\": 48} and
		j[\"totals\"][\"still reachable\"][\"blocks\"] >= 2)" &&
	report_json t.log &&
	json_check t.log.json "[(x[\"details\"][\"bytes\"], [(fr[\"function\"], fr[\"line\"]) for fr in x[\"stacks\"][0][\"frames\"]][0]) for x in j[\"findings\"] if x[\"kind\"] == \"leak\"] == [(48, (\"lose\", $L_LOST))]"
'

test_expect 'nothing lost: no leak finding, status 0, the blocks are still reachable' '
	build &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./leaky >out &&
	leaks_json t.log && test "$(cat t.log.leaks.rc)" = 0 &&
	json_check t.log.leaks "(j[\"totals\"][\"definitely lost\"][\"blocks\"] == 0 and
		j[\"totals\"][\"still reachable\"][\"blocks\"] >= 3)" &&
	report_json t.log &&
	json_check t.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] == \"leak\"]"
'

test_expect 'leaks=0: no scan, and analyze leaks says so' '
	build &&
	SPY_OPTIONS=out=$PWD/t.log:leaks=0 LD_PRELOAD=$LIBSPY ./leaky leak >out &&
	"$ANALYZE" leaks t.log >text &&
	grep -q "no leak scan" text
'

test_expect 'the text view groups by allocation stack' '
	build &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./leaky leak >out &&
	rc=0 && "$ANALYZE" leaks t.log >text || rc=$? &&
	test $rc = 1 &&
	grep -q "^definitely lost: 48 bytes in 1 block" text &&
	grep -q "lose at .*leaky.c:$L_LOST" text
'

test_expect 'the demos of the heap lessons: no leak' '
	for d in dangling_fixed stack_heap array_decay; do
		SPY_OPTIONS=out=$PWD/$d.log LD_PRELOAD=$LIBSPY "$TOP/demos/$d" >/dev/null &&
		report_json $d.log &&
		json_check $d.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] == \"leak\"]" ||
		return 1
	done
'

# Real programs that free what they use, or keep it reachable.
no_leak() {
	for t in traced/trace.*.log; do
		report_json "$t" &&
		json_check "$t.json" "not [x for x in j[\"findings\"] if x[\"kind\"] == \"leak\"]" ||
		return 1
	done
}
test_expect 'python3 -c: no leak blamed' '
	same_output python3 python3 -c "print(sum(range(1000)))" && no_leak
'
test_expect 'python3 with threads: no leak blamed (mappings the kernel merged with libspy ones are still scanned)' '
	same_output python3 python3 "$FIXTURES/threads.py" && no_leak
'
test_expect 'sqlite3: no leak blamed' '
	same_output sqlite3 sh -c "sqlite3 :memory: <\"\$1\"" sh "$FIXTURES/queries.sql" && no_leak
'
test_expect 'git --version and git init: no leak blamed' '
	export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null &&
	same_output git sh -c "git --version >/dev/null && git init -q repo && echo ok" && no_leak
'

test_done
