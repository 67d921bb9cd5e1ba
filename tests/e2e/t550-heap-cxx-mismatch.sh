#!/bin/bash
# t550: C++ deallocation that does not match the allocation (new[] with
# delete, malloc with delete, new with free) is a mismatched-free finding
# at the releasing line with the allocation's stack; matching pairs, the
# standard containers and exceptions from operator new are clean. A new[]
# array written one element past its end is a heap-overflow (the canary).
. "$(dirname "$0")/lib.sh"

cat >"$TEST_DIR/mm.cc" <<'CEOF'
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

struct Point { int x, y; };

int main(int argc, char **argv)
{
	int *scores = new int[10];                    // ALLOC new[]
	Point *p = new Point{1, 2};
	char *buf = static_cast<char *>(malloc(16));  // ALLOC malloc
	if (argc > 1) {
		delete scores;                        // BAD delete of new[]
		delete buf;                           // BAD delete of malloc
		free(p);                              // BAD free of new
	} else {
		delete[] scores;
		free(buf);
		delete p;
	}
	std::vector<std::string> names(200, std::string(40, 'n'));
	std::map<int, std::unique_ptr<Point>> m;
	for (int i = 0; i < 100; i++)
		m[i].reset(new Point{i, i});
	auto aligned = new (std::align_val_t(64)) Point[4];
	operator delete[](aligned, std::align_val_t(64));
	int *nt = new (std::nothrow) int[5];
	delete[] nt;
	std::printf("%zu %zu\n", names.size(), m.size());
	return 0;
}
CEOF
line_of() { grep -n -F -- "$1" "$TEST_DIR/mm.cc" | head -n 1 | cut -d: -f1; }
L1=$(line_of "BAD delete of new[]")
L2=$(line_of "BAD delete of malloc")
L3=$(line_of "BAD free of new")
LA=$(line_of "ALLOC new[]")

mm() { echo "[x for x in j[\"findings\"] if x[\"kind\"] == \"mismatched-free\"]"; }

test_expect 'three mismatches, each at its line with its families' '
	g++ -O0 -g -o mm "$TEST_DIR/mm.cc" &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./mm bad >out &&
	test "$(cat out)" = "200 100" &&
	report_json t.log &&
	json_check t.log.json "sorted((x[\"details\"][\"allocated_with\"], x[\"details\"][\"released_with\"], x[\"stacks\"][0][\"frames\"][0][\"line\"]) for x in $(mm)) == sorted([(\"new[]\", \"delete\", $L1), (\"malloc\", \"delete\", $L2), (\"new\", \"free\", $L3)])" &&
	json_check t.log.json "$LA in [f[\"line\"] for f in [x for x in $(mm) if x[\"details\"][\"allocated_with\"] == \"new[]\"][0][\"stacks\"][1][\"frames\"]]"
'

if [ -f /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ]; then
test_expect 'spy --allocator jemalloc (which exports operators of its own that bypass malloc): every C++ block recorded, the three mismatches found' '
	g++ -O0 -g -o mm "$TEST_DIR/mm.cc" &&
	"$SPY" -q --allocator jemalloc --no-report -o j.log ./mm bad >out &&
	test "$(cat out)" = "200 100" &&
	report_json j.log &&
	json_check j.log.json "sorted((x[\"details\"][\"allocated_with\"], x[\"details\"][\"released_with\"]) for x in $(mm)) == sorted([(\"new[]\", \"delete\"), (\"malloc\", \"delete\"), (\"new\", \"free\")])" &&
	"$ANALYZE" summary --json j.log >s.json &&
	json_check s.json "j[\"calls\"][\"malloc\"] >= 400 and j[\"calls\"][\"free\"] >= 400"
'
else
test_skip 'spy --allocator jemalloc with C++' 'libjemalloc.so.2 is not installed'
fi

test_expect 'matching pairs, containers, aligned and nothrow forms: no mismatch, no bad free' '
	g++ -O0 -g -o mm "$TEST_DIR/mm.cc" &&
	same_output mm "$PWD/mm" &&
	t=$(ls traced/trace.*.log) && report_json $t &&
	json_check $t.json "not [x for x in j[\"findings\"] if x[\"kind\"] in (\"mismatched-free\", \"double-free\", \"invalid-free\", \"leak\")]"
'

# A C program that dlopens a C++ library (RTLD_LOCAL: libstdc++ lands in
# the library's own scope, out of RTLD_NEXT's sight), whose constructor
# and functions use new: the operators still reach the runtime's.
cat >"$TEST_DIR/plugin.cc" <<'CEOF'
#include <string>
#include <vector>
static std::vector<std::string> *names =
	new std::vector<std::string>{"alpha", "beta"}; // constructor: new
extern "C" int plugin_count(int bad)
{
	int *a = new int[10];
	a[9] = (int)names->size();
	int n = a[9];
	if (bad)
		delete a;                              // PLUGIN delete of new[]
	else
		delete[] a;
	return n;
}
CEOF
cat >"$TEST_DIR/host.c" <<'CEOF'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv)
{
	void *h = dlopen("./libplugin.so", RTLD_NOW);
	if (!h) {
		printf("dlopen: %s\n", dlerror());
		return 1;
	}
	int (*count)(int) = (int (*)(int))dlsym(h, "plugin_count");
	printf("count %d\n", count(argc > 1));
	return 0;
}
CEOF
LP=$(grep -n -F "PLUGIN delete of new[]" "$TEST_DIR/plugin.cc" | cut -d: -f1)

test_expect 'a C program dlopens a C++ library: its new and delete work (they crashed), and a delete of new[] there is found' '
	g++ -shared -fPIC -O0 -g -o libplugin.so "$TEST_DIR/plugin.cc" &&
	gcc -O0 -g -o host "$TEST_DIR/host.c" -ldl &&
	./host >plain.out && test "$(cat plain.out)" = "count 2" &&
	SPY_OPTIONS=out=$PWD/g.log LD_PRELOAD=$LIBSPY ./host >out && cmp plain.out out &&
	report_json g.log &&
	json_check g.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] in (\"mismatched-free\", \"crash\", \"invalid-free\")]" &&
	SPY_OPTIONS=out=$PWD/p.log LD_PRELOAD=$LIBSPY ./host bad >out && test "$(cat out)" = "count 2" &&
	report_json p.log &&
	json_check p.log.json "[(x[\"details\"][\"allocated_with\"], x[\"details\"][\"released_with\"], x[\"stacks\"][0][\"frames\"][0][\"line\"]) for x in $(mm)] == [(\"new[]\", \"delete\", $LP)]"
'

# Operators called with no C++ runtime loaded at all (found through
# dlsym: only libspy's exist): served by libspy's malloc hooks, family kept.
cat >"$TEST_DIR/noruntime.c" <<'CEOF'
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
	void *(*op_new)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "_Znwm");
	void (*op_delete)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "_ZdlPv");
	void (*op_delete_array)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "_ZdaPv");
	if (!op_new || !op_delete || !op_delete_array) {
		puts("no operators");
		return 0;
	}
	char *p = op_new(24);
	strcpy(p, "served");
	puts(p);
	if (argc > 1)
		op_delete_array(p); /* NORUNTIME delete[] of new */
	else
		op_delete(p);
	return 0;
}
CEOF

test_expect 'operator new and delete with no C++ runtime loaded: served through the malloc hooks with their family (a delete[] of it is still found)' '
	gcc -O0 -g -o noruntime "$TEST_DIR/noruntime.c" -ldl &&
	test "$(./noruntime)" = "no operators" &&
	SPY_OPTIONS=out=$PWD/n.log LD_PRELOAD=$LIBSPY ./noruntime >out && test "$(cat out)" = served &&
	report_json n.log &&
	json_check n.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] in (\"mismatched-free\", \"crash\", \"invalid-free\", \"leak\")]" &&
	SPY_OPTIONS=out=$PWD/b.log LD_PRELOAD=$LIBSPY ./noruntime bad >out && test "$(cat out)" = served &&
	report_json b.log &&
	json_check b.log.json "[(x[\"details\"][\"allocated_with\"], x[\"details\"][\"released_with\"]) for x in $(mm)] == [(\"new\", \"delete[]\")]"
'

# A failed dlopen, then the first new: the runtime's operator was looked
# up at that moment, and the lookup reset what dlerror() then told the
# program (it printed "(no error)" under libspy).
cat >"$TEST_DIR/dlerr.cc" <<'CEOF'
#include <cstdio>
#include <dlfcn.h>
int main()
{
	void *h = dlopen("/nonexistent/plugin.so", RTLD_NOW);
	int *p = new int[4];
	p[0] = h != nullptr;
	const char *e = dlerror();
	std::printf("%d %s\n", p[0], e ? e : "(no error)");
	delete[] p;
	return 0;
}
CEOF

test_expect 'dlerror() after a failed dlopen and the first new: the program'\''s own message, as without libspy' '
	g++ -O0 -g -o dlerr "$TEST_DIR/dlerr.cc" &&
	same_output dlerr "$PWD/dlerr" && grep -q "nonexistent/plugin.so" traced.out
'

test_expect 'g++ compiling C++ (cc1plus is C++ itself): no mismatch, no bad free' '
	printf "#include <vector>\nint main() { std::vector<int> v(3); return v[0]; }\n" >v.cc &&
	same_output gxx g++ -O1 -c -o /dev/null "$PWD/v.cc" &&
	for t in traced/trace.*.log; do
		report_json $t &&
		json_check $t.json "not [x for x in j[\"findings\"] if x[\"kind\"] in (\"mismatched-free\", \"double-free\", \"invalid-free\")]" ||
		return 1
	done
'

# new int[5] filled with i <= 5: the last int lands past the array's end,
# in the slack glibc handed out with it.
cat >"$TEST_DIR/past.cc" <<'CEOF'
#include <cstdio>

int main(int argc, char **)
{
	int n = 5;
	int *a = new int[n];                          // ALLOC past
	for (int i = 0; i <= n - (argc > 1); i++)     // <= n: one past the end
		a[i] = i;
	std::printf("%d\n", a[n - 1]);
	delete[] a;                                   // FREE past
	return 0;
}
CEOF

test_expect 'new int[5] written one int past its end: a heap-overflow at the delete[], with the new[] line; the fixed loop is clean' '
	g++ -O0 -g -o past "$TEST_DIR/past.cc" &&
	SPY_OPTIONS=out=$PWD/p.log LD_PRELOAD=$LIBSPY ./past >out && test "$(cat out)" = 4 &&
	report_json p.log &&
	json_check p.log.json "[(x[\"details\"][\"size\"], x[\"details\"][\"first_offset\"]) + tuple([f[\"line\"] for f in st[\"frames\"] if f[\"function\"] == \"main\"][0] for st in x[\"stacks\"]) for x in j[\"findings\"] if x[\"kind\"] == \"heap-overflow\"] == [(20, 20, $(grep -n "ALLOC past" "$TEST_DIR/past.cc" | cut -d: -f1), $(grep -n "FREE past" "$TEST_DIR/past.cc" | cut -d: -f1))]" &&
	SPY_OPTIONS=out=$PWD/f.log LD_PRELOAD=$LIBSPY ./past fixed >out && test "$(cat out)" = 4 &&
	report_json f.log && json_check f.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] == \"heap-overflow\"]"
'


# A library with global operators of its own that no one else sees (a
# C++ runtime linked into it, as LLVM's and Rust's toolchains ship): its
# new calls malloc and its delete free, so libspy records malloc and free
# there; a block crossing between it and the program is C++ on both sides
# (rust-lld was reported with 116 mismatches).
cat >"$TEST_DIR/ownops.cc" <<'CEOF'
#include <cstdlib>
#include <new>
void *operator new(std::size_t n)
{
	void *p = std::malloc(n ? n : 1);
	if (!p)
		throw std::bad_alloc();
	return p;
}
void *operator new[](std::size_t n) { return operator new(n); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
int *lib_make(int v) { return new int(v); }
int *lib_make_array(int n) { return new int[n]; }
void lib_drop(int *p) { delete p; }
CEOF
cat >"$TEST_DIR/ownops.map" <<'CEOF'
{ global: _Z8lib_makei; _Z14lib_make_arrayi; _Z8lib_dropPi; local: *; };
CEOF
cat >"$TEST_DIR/ownmain.cc" <<'CEOF'
#include <cstdio>
int *lib_make(int v);
int *lib_make_array(int n);
void lib_drop(int *p);
int main(int argc, char **argv)
{
	int *a = lib_make(7);      // the library's new, the program's delete
	int *b = new int(8);       // the program's new, the library's delete
	int *c = lib_make_array(4);
	int *d = new int[3];
	int s = *a + *b;
	delete a;
	lib_drop(b);
	delete[] c;
	if (argc > 1)
		delete d;          // OWN delete of new[]
	else
		delete[] d;
	std::printf("%d\n", s);
	return 0;
}
CEOF
LO=$(grep -n -F "OWN delete of new[]" "$TEST_DIR/ownmain.cc" | cut -d: -f1)

test_expect 'a library with hidden operators of its own: blocks crossing between it and the program are no mismatch; the program'\''s own delete of new[] still is' '
	g++ -O1 -g -fPIC -shared -Wl,--version-script="$TEST_DIR/ownops.map" -o libownops.so "$TEST_DIR/ownops.cc" &&
	! nm -D libownops.so | grep -q " T _Znwm" &&
	g++ -O0 -g -o ownmain "$TEST_DIR/ownmain.cc" -L. -lownops -Wl,-rpath,"$PWD" &&
	SPY_OPTIONS=out=$PWD/o.log LD_PRELOAD=$LIBSPY ./ownmain >out && test "$(cat out)" = 15 &&
	report_json o.log &&
	json_check o.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] in (\"mismatched-free\", \"invalid-free\", \"double-free\")]" &&
	test "$("$ANALYZE" dump o.log | grep -c " mismatched-free ")" -ge 3 &&
	SPY_OPTIONS=out=$PWD/q.log LD_PRELOAD=$LIBSPY ./ownmain bad >out && test "$(cat out)" = 15 &&
	report_json q.log &&
	json_check q.log.json "[(x[\"details\"][\"allocated_with\"], x[\"details\"][\"released_with\"], x[\"stacks\"][0][\"frames\"][0][\"line\"]) for x in $(mm)] == [(\"new[]\", \"delete\", $LO)]"
'

# new[] of a type with a destructor keeps the element count in front of
# the first element and hands that out: delete or free then get a pointer
# 8 bytes into the block (16 for a type aligned to 16). glibc aborts
# ("free(): invalid pointer"); libspy names the mismatch (not a free of a
# pointer into a block), gives the whole block back (no leak) and the
# program finishes. delete[] is clean.
cat >"$TEST_DIR/cookie.cc" <<'CEOF'
#include <cstdio>
#include <cstdlib>

struct Cell { int v[6]; ~Cell() { v[0] = 0; } };
struct alignas(16) Wide { long double x; ~Wide() { x = 0; } };

int main(int argc, char **argv)
{
	char how = argc > 1 ? argv[1][0] : 'r';
	Cell *cells = new Cell[10];                   // ALLOC cells
	Wide *wide = new Wide[3];                     // ALLOC wide
	cells[3].v[1] = 7;
	if (how == 'd') {
		delete cells;                         // BAD delete of new[] cells
		delete wide;                          // BAD delete of new[] wide
	} else if (how == 'f') {
		free(cells);                          // BAD free of new[] cells
		delete[] wide;
	} else {
		delete[] cells;
		delete[] wide;
	}
	std::puts("done");
	return 0;
}
CEOF
C1=$(grep -n "BAD delete of new\[\] cells" "$TEST_DIR/cookie.cc" | cut -d: -f1)
C2=$(grep -n "BAD delete of new\[\] wide" "$TEST_DIR/cookie.cc" | cut -d: -f1)
C3=$(grep -n "BAD free of new\[\] cells" "$TEST_DIR/cookie.cc" | cut -d: -f1)

test_expect 'delete and free of a new[] array of a type with a destructor (a pointer behind the element count): mismatches at their lines with the offset, no invalid free, no leak; delete[] clean' '
	g++ -O0 -g -o cookie "$TEST_DIR/cookie.cc" &&
	for how in d f r; do
		rm -f c$how.log &&
		SPY_OPTIONS=out=$PWD/c$how.log LD_PRELOAD=$LIBSPY ./cookie $how >out &&
		test "$(cat out)" = done &&
		report_json c$how.log &&
		json_check c$how.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] in (\"invalid-free\", \"leak\", \"double-free\")]" || return 1
	done &&
	json_check cd.log.json "sorted((x[\"details\"][\"released_with\"], x[\"details\"][\"offset\"], x[\"stacks\"][0][\"frames\"][0][\"line\"]) for x in $(mm)) == [(\"delete\", 8, $C1), (\"delete\", 16, $C2)]" &&
	json_check cf.log.json "[(x[\"details\"][\"released_with\"], x[\"details\"][\"offset\"], x[\"stacks\"][0][\"frames\"][0][\"line\"]) for x in $(mm)] == [(\"free\", 8, $C3)]" &&
	json_check cr.log.json "$(mm) == []"
'

test_done
