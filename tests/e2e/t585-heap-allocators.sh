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

# A program linked with jemalloc that calls its own API (mallocx and the
# rest: bind9's libisc gets all of its memory so, and dig's libuv blocks,
# kept in such memory, read as lost): those blocks are roots too.
cat >"$TEST_DIR/mallocx.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jemalloc's own API */
void *mallocx(size_t size, int flags);
void *rallocx(void *ptr, size_t size, int flags);
size_t xallocx(void *ptr, size_t size, size_t extra, int flags);
void sdallocx(void *ptr, size_t size, int flags);
void dallocx(void *ptr, int flags);
size_t sallocx(const void *ptr, int flags);

struct ctx { char *name; char *items[64]; };
static struct ctx *ctx;      /* a global: a root */

static void lose(void)
{
	char *p = malloc(100);           /* MALLOCX: lost */
	strcpy(p, "lost");
}

int main(int argc, char **argv)
{
	char *tmp = mallocx(50, 0);
	ctx = mallocx(sizeof(*ctx), 0);
	memset(ctx, 0, sizeof(*ctx));
	ctx = rallocx(ctx, 40000, 0);    /* moved: a large block */
	xallocx(ctx, 40000, 1000, 0);
	ctx->name = malloc(100);         /* kept in the allocator's block */
	strcpy(ctx->name, "kept");
	for (int i = 0; i < 64; i++)
		ctx->items[i] = strdup("item");
	sdallocx(tmp, 50, 0);
	if (argc > 1 && !strcmp(argv[1], "lose"))
		lose();
	if (argc > 1 && !strncmp(argv[1], "mix", 3)) {
		/* the API on a block of malloc's, as jemalloc allows */
		char *c = malloc(300);
		strcpy(c, "c");
		c = rallocx(c, 5000, 0);         /* MALLOCX: grown */
		printf("%d %d ", sallocx(c, 0) >= 5000, c[0] == 'c');
		printf("%d ", xallocx(c, 6000, 0, 0) >= 5000);
		if (strcmp(argv[1], "mixlose"))
			dallocx(c, 0);
	}
	printf("%s %s\n", ctx->name, ctx->items[63]);
	return 0;
}
CEOF
L_MX_LOST=$(line_of "MALLOCX: lost" mallocx.c)
L_MX_MIX=$(line_of "MALLOCX: grown" mallocx.c)

# lost_lines TRACE: the lines of the definitely lost blocks, any function
lost_lines() {
	local rc=0
	"$ANALYZE" leaks --json "$1" >"$1.leaks.json" || rc=$?
	test "$rc" -le 1 &&
	python3 - "$1.leaks.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(" ".join(str(g["frames"][0]["line"]) if g["frames"] else "?"
      for g in j["groups"] if g["class"] == "definitely lost"))
PY
}

JEMALLOC=$LIBDIR/libjemalloc.so.2
if [ -f "$JEMALLOC" ]; then
test_expect 'jemalloc'\''s own API (mallocx): a block kept only in one of its blocks is not lost; one lost is' '
	gcc -O0 -g -o mallocx "$TEST_DIR/mallocx.c" "$JEMALLOC" &&
	test "$(./mallocx)" = "kept item" &&
	for mode in "" guard=1; do
		rm -f k.log l.log &&
		out=$(SPY_OPTIONS=${mode:+$mode:}out=$PWD/k.log LD_PRELOAD=$LIBSPY ./mallocx) &&
		test "$out" = "kept item" && say "$mode: kept" &&
		test "$(lost_lines k.log)" = "" &&
		out=$(SPY_OPTIONS=${mode:+$mode:}out=$PWD/l.log LD_PRELOAD=$LIBSPY ./mallocx lose) &&
		test "$out" = "kept item" && say "$mode: lose" &&
		test "$(lost_lines l.log)" = "$L_MX_LOST" || return 1
	done
'

test_expect 'jemalloc'\''s own API on a block of malloc'\''s (rallocx, sallocx, xallocx, dallocx): the same output, no crash, no false leak; one lost is' '
	gcc -O0 -g -o mallocx "$TEST_DIR/mallocx.c" "$JEMALLOC" &&
	test "$(./mallocx mix)" = "1 1 1 kept item" &&
	for mode in "" guard=1; do
		rm -f m.log n.log &&
		out=$(SPY_OPTIONS=${mode:+$mode:}out=$PWD/m.log LD_PRELOAD=$LIBSPY ./mallocx mix) &&
		say "$mode: $out" && test "$out" = "1 1 1 kept item" &&
		test "$(lost_lines m.log)" = "" &&
		out=$(SPY_OPTIONS=${mode:+$mode:}out=$PWD/n.log LD_PRELOAD=$LIBSPY ./mallocx mixlose) &&
		test "$out" = "1 1 1 kept item" &&
		test "$(lost_lines n.log)" = "$L_MX_MIX" || return 1
	done
'
else
test_skip 'jemalloc'\''s own API (mallocx)' 'libjemalloc2 is not installed'
fi

test_done
