#!/bin/bash
# t530: guard mode (guard=1, spy --guard). A use after free and an overflow
# past the end stop the program at the faulting line, reported next to the
# block's allocation (and free) stacks; the program dies of the SIGSEGV as
# it would have; correct programs run unchanged, a million allocations
# finish, and malloc_usable_size answers right.
. "$(dirname "$0")/lib.sh"

line_of() { grep -n -F -- "$2" "$1" | head -n 1 | cut -d: -f1; }
DANG=$TOP/demos/dangling.c
L_MALLOC=$(line_of "$DANG" "malloc(sizeof *p)")
L_FREE=$(line_of "$DANG" "free(p);            /* the caller")
L_WRITE=$(line_of "$DANG" "BUG: write into a freed block")

kind() { echo "[x for x in j[\"findings\"] if x[\"kind\"] == \"$1\"]"; }
frames() { echo "[(fr[\"function\"], fr[\"line\"]) for fr in $1[\"frames\"]]"; }

test_expect 'spy --guard on the dangling demo: stopped at the write, status 139, three stacks' '
	rc=0 && "$SPY" --guard --no-report -o t.log "$TOP/demos/dangling" >out 2>err || rc=$? &&
	test $rc = 139 &&
	! grep -q "no crash" out &&
	report_json t.log &&
	json_check t.log.json "len($(kind use-after-free)) == 1" &&
	json_check t.log.json "($(kind use-after-free))[0][\"details\"][\"offset\"] == 32" &&
	json_check t.log.json "(\"use_after_free\", $L_WRITE) == $(frames "($(kind use-after-free))[0][\"stacks\"][0]")[0]" &&
	json_check t.log.json "(\"remove_player\", $L_FREE) in $(frames "($(kind use-after-free))[0][\"stacks\"][1]")" &&
	json_check t.log.json "(\"new_player\", $L_MALLOC) in $(frames "($(kind use-after-free))[0][\"stacks\"][2]")"
'

test_expect 'guard mode: the fixed demo runs unchanged and clean' '
	SPY_OPTIONS=guard=1 same_output dangling_fixed "$TOP/demos/dangling_fixed" &&
	t=$(ls traced/trace.*.log) && report_json $t &&
	json_check $t.json "not $(kind use-after-free) and not $(kind heap-overflow)"
'

cat >"$TEST_DIR/over.c" <<'CEOF'
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "many")) {
		/* a million allocations, some kept a while */
		static void *keep[1000];
		for (int i = 0; i < 1000000; i++) {
			int k = i % 1000;
			free(keep[k]);
			keep[k] = malloc(16 + i % 100);
		}
		for (int k = 0; k < 1000; k++)
			free(keep[k]);
		puts("a million done");
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "usable")) {
		char *p = malloc(100), *q = calloc(10, 10), *r = realloc(NULL, 7);
		r = realloc(r, 3000);
		printf("%zu %zu %zu %d\n", malloc_usable_size(p),
		       malloc_usable_size(q), malloc_usable_size(r), q[99]);
		free(p); free(q); free(r);
		return 0;
	}
	char *name = malloc(16);
	strcpy(name, "sixteen chars!!");            /* 16 bytes with the '\0': fits */
	for (int i = 0; i <= 16; i++)
		name[i] = 'x';                      /* OVERFLOW: name[16] */
	printf("%c\n", name[0]);
	free(name);
	return 0;
}
CEOF
L_OVER=$(line_of "$TEST_DIR/over.c" "OVERFLOW: name[16]")
L_ALLOC=$(line_of "$TEST_DIR/over.c" "char *name = malloc(16)")

test_expect 'an overflow one byte past the end: heap-overflow at its line' '
	gcc -O0 -g -o over "$TEST_DIR/over.c" &&
	./over >plain.out &&
	rc=0 && SPY_OPTIONS=out=$PWD/t.log:guard=1 LD_PRELOAD=$LIBSPY ./over >out 2>err || rc=$? &&
	test $rc = 139 &&
	report_json t.log &&
	json_check t.log.json "len($(kind heap-overflow)) == 1" &&
	json_check t.log.json "($(kind heap-overflow))[0][\"details\"][\"offset\"] == 16" &&
	json_check t.log.json "(\"main\", $L_OVER) == $(frames "($(kind heap-overflow))[0][\"stacks\"][0]")[0]" &&
	json_check t.log.json "(\"main\", $L_ALLOC) in $(frames "($(kind heap-overflow))[0][\"stacks\"][1]")"
'

test_expect 'without guard mode the same overflow is found at the free (the canary), not at its line; with canary=0 not at all' '
	gcc -O0 -g -o over "$TEST_DIR/over.c" &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./over >out &&
	report_json t.log &&
	json_check t.log.json "len($(kind heap-overflow)) == 1 and ($(kind heap-overflow))[0][\"details\"][\"found\"] == \"at its free\"" &&
	json_check t.log.json "(\"main\", $L_ALLOC) == $(frames "($(kind heap-overflow))[0][\"stacks\"][0]")[0]" &&
	SPY_OPTIONS=out=$PWD/n.log:canary=0 LD_PRELOAD=$LIBSPY ./over >out &&
	report_json n.log &&
	json_check n.log.json "not $(kind heap-overflow)"
'

test_expect 'a million allocations finish in guard mode' '
	gcc -O1 -g -o over "$TEST_DIR/over.c" &&
	SPY_OPTIONS=out=$PWD/t.log:guard=1:stacks=0 LD_PRELOAD=$LIBSPY ./over many >out &&
	grep -x "a million done" out
'

test_expect 'malloc_usable_size, calloc zeroes and realloc in guard mode' '
	gcc -O1 -g -o over "$TEST_DIR/over.c" &&
	SPY_OPTIONS=out=$PWD/t.log:guard=1 LD_PRELOAD=$LIBSPY ./over usable >out &&
	test "$(cat out)" = "100 100 3000 0"
'

test_expect 'guard mode: a double free is still caught and survived' '
	SPY_OPTIONS=out=$PWD/t.log:guard=1 LD_PRELOAD=$LIBSPY "$TOP/demos/dangling" --double-free >out &&
	grep -x "still running after the double free" out &&
	report_json t.log &&
	json_check t.log.json "len($(kind double-free)) == 1"
'

test_expect 'guard mode: perl keeping 100,000 arrays live finishes (guarded blocks stop short of the kernel'\''s mapping limit), with one warning' '
	rc=0 && SPY_OPTIONS=out=$PWD/p.log:guard=1:stacks=0 LD_PRELOAD=$LIBSPY \
		perl -e "my %h; \$h{\$_} = [\$_] for 1 .. 100000; print scalar(keys %h), qq(\n)" >out 2>err || rc=$? &&
	say "status $rc" && test "$rc" -eq 0 && test "$(cat out)" = 100000 &&
	one_line err && grep -q "vm.max_map_count" err
'

test_expect 'guard mode: python3 and sqlite3 run unchanged' '
	SPY_OPTIONS=guard=1 same_output python3 python3 -c "print(sorted(str(i) for i in range(2000))[-1])" &&
	rm -rf plain traced &&
	SPY_OPTIONS=guard=1 same_output sqlite3 sh -c "sqlite3 :memory: <\"\$1\"" sh "$FIXTURES/queries.sql"
'

# Pages a program wrote carry the kernel's anon_vma: freed with mprotect,
# such ranges did not merge back into the reservation, and this program
# (12,000 strings in a std::map made in a thread, below the live-block cap) ran out of
# mappings: malloc returned NULL, std::bad_alloc, status 134.
cat >"$TEST_DIR/strmap.cc" <<'CEOF'
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

static std::map<std::string, int> g;

static void fill()
{
	for (int i = 0; i < 12000; i++) {
		std::string k = "key" + std::to_string(i) + std::string(i % 50, 'x');
		try {
			if (i % 100 == 0)
				throw std::runtime_error(k);
		} catch (const std::exception &e) {
			g[e.what()] += 2;
			continue;
		}
		auto p = std::make_unique<std::vector<int>>(i % 37, i);
		g[k] += p->size();
	}
}

int main()
{
	std::thread(fill).join(); /* in a thread: in main, they merged */
	long s = 0;
	for (auto &kv : g)
		s += kv.second + kv.first.size();
	std::cout << g.size() << " " << s << std::endl;
}
CEOF
if command -v g++ >/dev/null 2>&1; then
	test_expect 'guard mode: freed pages merge back, a C++ map of 12,000 strings does not run out of mappings' '
		g++ -O2 -pthread -o strmap "$TEST_DIR/strmap.cc" &&
		SPY_OPTIONS=guard=1:stacks=0 same_output strmap "$PWD/strmap"
	'
else
	test_skip 'guard mode: freed pages merge back, a C++ map of 12,000 strings does not run out of mappings' 'no g++'
fi

test_done
