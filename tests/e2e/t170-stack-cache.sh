#!/bin/bash
# t170: the stack cache (stack_cache=1, the default) gives exactly the stacks
# that unwinding every event gives (stack_cache=0), on a program built to
# confuse it and on real programs whose allocations repeat run to run.
. "$(dirname "$0")/lib.sh"

SHAPES=$TEST_DIR/stackshapes
gcc -std=gnu11 -O1 -g -pthread -o "$SHAPES" "$FIXTURES/stackshapes.c" || exit 1
SHAPES2=$TEST_DIR/stackshapes2
gcc -std=gnu11 -O2 -g -pthread -o "$SHAPES2" "$FIXTURES/stackshapes.c" || exit 1

# heap_stacks CACHE CMD...: the program's heap events with their stacks,
# symbolized, addresses and sizes of no interest left out, in ./heap.CACHE.
heap_stacks() {
	local cache=$1 t
	shift
	rm -rf "run$cache" && mkdir "run$cache" &&
	(cd "run$cache" &&
	 SPY_OPTIONS=out=$PWD/t.%p.log:stack_cache=$cache LD_PRELOAD=$LIBSPY \
		"$@" >out 2>err) || return 1
	# processes in the order they started (file names follow pids, which
	# need not grow from one run to the next)
	for t in run$cache/t.*.log; do
		"$ANALYZE" summary --json "$t" >"$t.sum" &&
		python3 -c "import json, sys
print(json.load(open(sys.argv[1]))[\"process\"][\"start_unix_ns\"], sys.argv[2])" \
			"$t.sum" "$t" || return 1
	done >"order.$cache" &&
	sort -n "order.$cache" | while read -r _ t; do
		"$ANALYZE" dump "$t" >"$t.dump" || exit 1
		awk -v skip="${SKIP_EVENT:-^$}" '/^ *[0-9.]+ +[0-9]+ [a-z_-]+/ {
			keep = ($3 == "alloc" || $3 == "free" || $3 == "realloc") &&
			       $0 !~ skip }
		     keep' "$t.dump" | sed -E 's/0x[0-9a-f]+/ADDR/g; s/^ *[0-9.]+ +[0-9]+ //'
	done >"heap.$cache"
}

# same_stacks CMD...: both ways give the same heap events and stacks, and
# there are stacks to compare.
same_stacks() {
	heap_stacks 0 "$@" && heap_stacks 1 "$@" &&
	n=$(grep -c '^ *#0 ' heap.1) && say "$n stacks" && test "$n" -gt 50 &&
	{ cmp heap.0 heap.1 || { diff heap.0 heap.1 | head -n 30; return 1; }; }
}

test_expect 'one site from look-alike callers, recursion, alloca, signals, threads (-O1)' '
	same_stacks "$SHAPES" &&
	grep -q "right at stackshapes.c" heap.1 && grep -q "left at stackshapes.c" heap.1 &&
	grep -q "down at stackshapes.c" heap.1 && grep -q "sized at stackshapes.c" heap.1
'

test_expect 'the same program built with -O2' '
	same_stacks "$SHAPES2"
'

# f is dated in the past: a file changed in the same clock tick as the index
# is "racily clean" to git, which then reads it again (and its attributes),
# so the heap events would depend on timing.
test_expect 'git init, add and commit' '
	export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@example.org \
	       GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@example.org \
	       GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z &&
	same_stacks sh -c "rm -rf r && git init -q r && cd r && echo x >f && touch -d @1577836800 f && git add f && git commit -qm m"
'

test_expect 'sqlite3 on an in-memory database' '
	same_stacks sqlite3 :memory: "create table t(a, b); insert into t values (1, 2), (3, 4); select sum(a * b) from t;"
'

# CPython's allocator takes a 128 KiB node of its map of arenas (calloc)
# when a new arena lands in a stretch of the address space it has not
# used yet: where mmap put it (ASLR) decides, not the program, so those
# calls are left out of the comparison.
test_expect 'python3 building and printing a dictionary' '
	PYTHONHASHSEED=0 SKIP_EVENT=" calloc 0x[0-9a-f]+ size 131072$" same_stacks python3 -c "import json; print(json.dumps({str(i): i for i in range(200)}))"
'

test_done
