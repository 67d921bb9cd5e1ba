#!/bin/bash
# t585: programs on another allocator than glibc's (jemalloc, mimalloc,
# tcmalloc preloaded after libspy), as real programs use them: their
# output and status unchanged, and no finding a plain glibc run would not
# have.
. "$(dirname "$0")/lib.sh"

LIBDIR=/usr/lib/x86_64-linux-gnu
allocators=
for a in libjemalloc.so.2 libmimalloc.so.2 libtcmalloc_minimal.so.4; do
	[ -f "$LIBDIR/$a" ] && allocators="$allocators $LIBDIR/$a"
done

line_of() { grep -n -F -- "$1" "$TEST_DIR/$2" | head -n 1 | cut -d: -f1; }

# A forked child keeps its block only in a block it inherited from its
# parent (bash's shells of a command substitution do so): that block is a
# root of the child's leak scan, also where the allocator's own memory is
# none.
cat >"$TEST_DIR/inherit.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct box { char *item; };
static struct box *box;      /* the parent's block, inherited */

static void keep(const char *s)
{
	box->item = malloc(100);        /* INHERIT: kept in the parent's block */
	strcpy(box->item, s);
}

static void lose(void)
{
	char *p = malloc(100);          /* INHERIT: lost */
	strcpy(p, "lost");
}

int main(int argc, char **argv)
{
	box = malloc(sizeof(*box));
	box->item = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		keep("kept");
		if (argc > 1 && !strcmp(argv[1], "lose"))
			lose();
		printf("child %s\n", box->item);
		fflush(stdout);
		exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("parent %d\n", WEXITSTATUS(st));
	free(box);
	return 0;
}
CEOF
L_LOST=$(line_of "INHERIT: lost" inherit.c)

# leak_lines TRACE: the lines in inherit.c of the definitely lost blocks
leak_lines() {
	local rc=0
	"$ANALYZE" leaks --json "$1" >"$1.leaks.json" || rc=$?
	test "$rc" -le 1 &&
	python3 - "$1.leaks.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(" ".join(str(g["frames"][0]["line"]) for g in j["groups"]
      if g["class"] == "definitely lost" and g["frames"]
      and g["frames"][0]["function"] in ("keep", "lose")))
PY
}

# run_inherit ALLOCATOR ARG: runs inherit in run/, prints the child's trace
run_inherit() {
	rm -rf run && mkdir run &&
	(cd run && SPY_OPTIONS=out=$PWD/t.%p.log LD_PRELOAD=$LIBSPY${1:+:$1} ../inherit $2 >out) &&
	test "$(cat run/out)" = "$(printf "child kept\nparent 0")" &&
	for t in run/t.*.log; do
		"$ANALYZE" summary "$t" | grep -q "forked from" && echo "$t"
	done
}

if [ -n "$allocators" ]; then
test_expect 'a forked child keeps a block only in its parent'\''s block: not lost, on every allocator; one lost is' '
	gcc -O0 -g -o inherit "$TEST_DIR/inherit.c" &&
	for a in "" $allocators; do
		child=$(run_inherit "$a" keep) && say "$a: $child" && test -n "$child" &&
		test "$(leak_lines "$child")" = "" &&
		child=$(run_inherit "$a" lose) && test -n "$child" &&
		test "$(leak_lines "$child")" = "$L_LOST" || return 1
	done
'
else
test_skip 'a forked child keeps a block only in its parent'\''s block' 'no libjemalloc2, libmimalloc2.0 or libtcmalloc-minimal4'
fi

test_done
