#!/bin/bash
# t100: real programs that no one here wrote keep their output and exit
# status under LD_PRELOAD=libspy.so, and leave traces that analyze reads.
. "$(dirname "$0")/lib.sh"

# no_heap_errors: no trace left in traced/ has a finding that blames the
# program's heap use (these programs are correct): no overflow, use after
# free, bad or mismatched free, crash.
no_heap_errors() {
	local t
	for t in traced/trace.*.log; do
		[ -f "$t" ] || continue
		report_json "$t" "$t.r.json" &&
		json_check "$t.r.json" "not [x[\"kind\"] for x in j[\"findings\"] if x[\"kind\"] in (\"heap-overflow\", \"use-after-free\", \"double-free\", \"invalid-free\", \"mismatched-free\", \"crash\")]" || return 1
	done
}

test_expect 'python3 with threads: same stdout and status, traces read' '
	same_output python3 python3 "$FIXTURES/threads.py" &&
	no_heap_errors
'

test_expect 'perl: same stdout and status, traces read' '
	same_output perl perl "$FIXTURES/script.pl" &&
	no_heap_errors
'

test_expect 'sqlite3 on an in-memory database: same stdout and status' '
	same_output sqlite3 sh -c "sqlite3 :memory: <\"\$1\"" sh "$FIXTURES/queries.sql" &&
	no_heap_errors
'

# Fixed names, dates and no user or system configuration: the commit id
# is the same on every run.
git_session() {
	export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
		GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.org \
		GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.org \
		GIT_AUTHOR_DATE="2020-01-01T00:00:00Z" \
		GIT_COMMITTER_DATE="2020-01-01T00:00:00Z" &&
	git init -q -b main repo &&
	cd repo &&
	printf "one\ntwo\n" >a.txt &&
	mkdir sub && echo three >sub/b.txt &&
	git add a.txt sub &&
	git commit -q -m "first commit" &&
	echo four >>a.txt &&
	git commit -q -am "second commit" &&
	git log --format="%H %an %ad %s" --date=iso-strict &&
	git diff --stat HEAD~1 HEAD &&
	git cat-file -p HEAD:sub/b.txt
}
test_expect 'git init, add, commit, log: same stdout and status' '
	same_output git git_session &&
	no_heap_errors
'

test_expect 'gcc compiles hello.c and the program runs: same stdout' '
	same_output gcc sh -c "cp \"\$1\" . && gcc -O1 -o hello hello.c && ./hello" sh "$FIXTURES/hello.c" &&
	no_heap_errors
'

test_expect 'make with a tiny Makefile: same stdout and status' '
	same_output make make -s -f "$FIXTURES/tiny.mk" &&
	no_heap_errors
'

test_expect 'bash loop with pipes and subshells: same stdout and status' '
	same_output bash bash "$FIXTURES/loop.sh" &&
	no_heap_errors
'

test_expect 'a program exiting with status 3 keeps it' '
	same_output exit3 python3 -c "import sys; print(\"bye\"); sys.exit(3)" &&
	grep -q "status 3 plain, 3 traced" .log
'

test_expect 'a C program exiting with status 42 keeps it (exit from main)' '
	gcc -o ret42 -x c - <<-\EOC &&
	#include <stdio.h>
	int main(void) { puts("forty-two"); return 42; }
	EOC
	same_output ret42 "$PWD/ret42" &&
	grep -q "status 42 plain, 42 traced" .log
'

# gdb is threaded, frees from dlclose with the loader's lock held, and runs
# its inferior (preloaded too) under ptrace: libunwind's lock and the
# loader's taken in opposite orders by two of its threads hung it.
cat >"$TEST_DIR/segv.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
struct node { int key; };
int main(void)
{
	char *p = malloc(10);
	printf("before\n");
	fflush(stdout);
	struct node *n = NULL;
	n->key = 3;                            /* the fault */
	free(p);
	return 0;
}
EOF

test_expect 'gdb runs a program to its fault and prints the backtrace: same stdout and status, five times' '
	gcc -O0 -g -o segv "$TEST_DIR/segv.c" &&
	for i in 1 2 3 4 5; do
		rm -rf plain traced &&
		same_output gdb timeout 60 gdb -q -batch -ex run -ex bt "$PWD/segv" &&
		grep -q "^#0 .* main () at .*segv.c" traced.out || return 1
	done
'

test_done
