#!/bin/bash
# t600: the HTML report and the Chrome trace export. spy --html writes the
# page next to the trace; headless Chromium opens the pages and the test
# checks what rendered (the findings, pictures with content, no console
# error, no request); the heap picture's holes and the lock graph's red
# cycle are the right ones; a hostile program name cannot inject markup;
# every demo's page stays under 1 MB; export --chrome is Trace Event JSON;
# the text report is coloured on a terminal only and never with NO_COLOR.
. "$(dirname "$0")/lib.sh"

DEMOS=$TOP/demos
CHECK=$TOP/tests/e2e/html_check.py
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)

# page_of TRACE OUT: analyze report --html TRACE -o OUT (status 0 or 1).
page_of() {
	local rc=0
	"$ANALYZE" report --html "$1" -o "$2" 2>"$2.err" || rc=$?
	[ "$rc" -le 1 ] || { say "analyze report --html exited $rc"; cat "$2.err"; return 1; }
	test -s "$2"
}

# render PAGE: what Chromium rendered, as JSON in PAGE.render.
render() {
	python3 "$CHECK" "$CHROMIUM" "$1" >"$1.render" || {
		say "html_check failed"; return 1; }
	say "$(head -c 1500 "$1.render")"
}

# rendered_ok PAGE [N]: N pictures (default 5: heap, locks, threads, system
# calls, map), each drawn with shapes and a size; no console error, no
# script, nothing asked of the network.
rendered_ok() {
	json_check "$1.render" "len(j[\"svgs\"]) == ${2:-5} and all(s[\"shapes\"] > 0 and s[\"width\"] > 100 and s[\"height\"] > 20 for s in j[\"svgs\"])" &&
	json_check "$1.render" "j[\"console_errors\"] == [] and j[\"requests\"] == [] and j[\"scripts\"] == 0"
}

test_expect 'spy --html writes the page next to the trace and prints its path' '
	"$SPY" --html -o run.log "$DEMOS/deadlock" >out 2>err &&
	cat err &&
	test -s run.log.html &&
	grep -q "HTML report written to .*/run.log.html" err &&
	grep -q "lock-order-cycle" run.log.html
'

test_expect 'analyze report --html without -o writes TRACE.html and says so' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/dangling" >/dev/null &&
	rc=0 && "$ANALYZE" report --html t.log >out || rc=$? &&
	test $rc -eq 1 &&
	grep -qx "libspy: HTML report written to t.log.html" out &&
	grep -q "data-kind=\"use-after-free\"" t.log.html &&
	test_must_fail_2() { "$ANALYZE" report --html t.log -o /nonexistent/dir/x.html; test $? -eq 2; } &&
	test_must_fail_2
'

test_expect 'report --json --html, and -o without --html, are one line of bad usage; nothing written' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/dangling" >/dev/null &&
	for args in "--json --html" "--html --json" "-o r.html" "--json -o r.html"; do
		rc=0 && "$ANALYZE" report $args t.log >out 2>err || rc=$?
		say "report $args: status $rc: $(cat err)"
		test $rc -eq 2 && one_line err && ! test -s out &&
		grep -q "^analyze: .* (see analyze --help)$" err || return 1
	done &&
	! test -e t.log.html && ! test -e r.html
'

if [ -z "$CHROMIUM" ] || ! "$CHROMIUM" --version >/dev/null 2>&1; then
	test_skip 'Chromium renders the reports' 'chromium is not installed'
else
	test_expect 'the browser check sees console errors and requests (control)' '
		printf "%s" "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src none\"></head><body><script>console.error(1)</script><img src=\"http://192.0.2.1/x.png\"></body></html>" >bad.html &&
		render bad.html &&
		json_check bad.html.render "len(j[\"console_errors\"]) >= 1 and j[\"scripts\"] == 1" &&
		! rendered_ok bad.html
	'

	test_expect 'deadlock: the finding, its stacks with source lines, the red cycle is the finding'"'"'s' '
		SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/deadlock" >/dev/null &&
		page_of t.log t.html &&
		{ "$ANALYZE" report --json t.log >t.json; test $? -eq 1; } &&
		render t.html &&
		rendered_ok t.html &&
		json_check t.html.render "[f[\"kind\"] for f in j[\"findings\"]] == [\"lock-order-cycle\"] and all(f[\"visible\"] and f[\"stacks\"] == 4 and f[\"source\"] >= 4 for f in j[\"findings\"])" &&
		python3 - t.json t.html.render <<-EOF
		import json, sys
		rep = json.load(open(sys.argv[1]))
		page = json.load(open(sys.argv[2]))
		cyc = [d for f in rep["findings"] if f["kind"] == "lock-order-cycle"
		       for d in [f["details"]["cycle"]]][0]
		want = sorted((e["from"], e["to"]) for e in cyc["edges"])
		got = sorted(tuple(e) for e in page["cycle_edges"])
		print("finding:", want, "page:", got)
		sys.exit(0 if want == got and len(got) == 2 else 1)
		EOF
	'

	test_expect 'deadlock_fixed --gate: no error on the page, the gated cycle drawn as safe' '
		SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/deadlock_fixed" --gate >/dev/null &&
		page_of t.log t.html &&
		render t.html && rendered_ok t.html &&
		json_check t.html.render "[f for f in j[\"findings\"] if f[\"severity\"] == \"error\"] == [] and j[\"cycle_edges\"] == [] and len(j[\"safe_cycle_edges\"]) == 2"
	'

	test_expect 'fragmentation: the heap picture'"'"'s holes are analyze fragmentation'"'"'s (8192 of 4 KB)' '
		rc=0 &&
		SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/fragmentation" >out || rc=$? &&
		test $rc -eq 1 &&
		page_of t.log t.html &&
		{ "$ANALYZE" fragmentation --json t.log >frag.json; test $? -le 1; } &&
		render t.html && rendered_ok t.html 4 &&
		python3 - frag.json t.html.render <<-EOF
		import json, sys
		snap = json.load(open(sys.argv[1]))["snapshots"][0]
		pic = [s["data"] for s in json.load(open(sys.argv[2]))["svgs"]
		       if s["id"] == "heap-picture"][0]
		want = (snap["holes"], snap["free_bytes"], snap["largest_hole"])
		got = (int(pic["holes"]), int(pic["holeBytes"]), int(pic["largestHole"]))
		print("analyze fragmentation:", want, "picture:", got)
		sys.exit(0 if want == got and got[0] == 8192 and 4000 <= got[2] < 4096 else 1)
		EOF
	'

	test_expect 'a hostile program name and arguments stay text' '
		cp /bin/true "./<img src=x onerror=alert(1)>" &&
		SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "./<img src=x onerror=alert(1)>" "<script>alert(2)</script>" "\"&'"'"'" >/dev/null &&
		page_of t.log t.html &&
		! grep -q "<img src=x" t.html &&
		! grep -q "<script>alert" t.html &&
		grep -q "&lt;script&gt;alert(2)&lt;/script&gt;" t.html &&
		render t.html && rendered_ok t.html 2 &&
		json_check t.html.render "\"<img src=x onerror=alert(1)>\" in j[\"title\"]"
	'
fi

test_expect 'source lines only from source files: debug information naming /etc/passwd is not quoted' '
	printf "%s\n" "#include <stdlib.h>" "int main(void)" "{" \
		"#line 1 \"/etc/passwd\"" \
		"	char *p = malloc(8); free(p); free(p);" "	return 0;" "}" >pw.c &&
	gcc -g -O0 -o pw pw.c &&
	SPY_OPTIONS=out=$PWD/pw.log LD_PRELOAD=$LIBSPY ./pw &&
	page_of pw.log pw.html &&
	grep -q "data-kind=\"double-free\"" pw.html &&
	grep -q "/etc/passwd:1" pw.html &&
	! grep -q "root:" pw.html &&
	! grep -q "<pre class=\"src\">" pw.html
'

test_expect 'every demo'"'"'s page is under 1 MB' '
	for d in stack_heap array_decay dangling dangling_fixed recursion recursion_fixed virtual_memory deadlock deadlock_fixed syscall_overhead fragmentation fragmentation_fixed scheduling_tax scheduling_tax_fixed livelock livelock_fixed false_sharing false_sharing_fixed; do
		args= &&
		case $d in false_sharing*) args=20000000 ;; esac &&
		rm -f t.*.log &&
		{ SPY_OPTIONS=out=$PWD/t.%p.log timeout 60 env LD_PRELOAD=$LIBSPY "$DEMOS/$d" $args >/dev/null 2>&1 || :; } &&
		n=0 &&
		for t in t.*.log; do
			page_of "$t" "$d.html" &&
			size=$(stat -c %s "$d.html") &&
			say "$d: $size bytes" &&
			test "$size" -lt 1048576 &&
			n=$((n + 1)) || exit 1
		done &&
		test $n -ge 1 || exit 1
	done
'

test_expect 'the process map is analyze map'"'"'s end map, with its live heap blocks' '
	for d in stack_heap dangling_fixed scheduling_tax; do
		rm -f m.*.log &&
		{ SPY_OPTIONS=out=$PWD/m.%p.log:quarantine_mb=0 env LD_PRELOAD=$LIBSPY "$DEMOS/$d" >/dev/null 2>&1 || :; } &&
		t=$(ls m.*.log | head -1) &&
		page_of "$t" m.html &&
		"$ANALYZE" map --json "$t" >m.json &&
		got=$(grep -o "<svg id=\"process-map\"[^>]*>" m.html | grep -o "data-[a-z-]*=\"[0-9]*\"" | tr "\n" " ") &&
		want=$(python3 -c "import json, sys
r = json.load(open(sys.argv[1]))[\"regions\"][:48]
print(\"data-regions=\\\"%d\\\" data-live-blocks=\\\"%d\\\" \" % (len(r), sum((x.get(\"blocks\") or {}).get(\"live\", 0) for x in r)))" m.json) &&
		say "$d: page $got, map $want" &&
		test "$got" = "$want" &&
		case $d in
		stack_heap) grep -q "brk heap" m.html && ! grep -q "data-live-blocks=\"0\"" m.html ;;
		scheduling_tax) grep -q "stack of thread" m.html ;;
		esac || exit 1
	done
'

test_expect 'thread timeline: a condition wait and the lock holds around it' '
	cat >cv.c <<-EOF &&
	#include <pthread.h>
	#include <unistd.h>
	static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
	static int ready;
	static void *worker(void *a)
	{
		(void)a;
		pthread_mutex_lock(&m);
		while (!ready)
			pthread_cond_wait(&c, &m);
		pthread_mutex_unlock(&m);
		return 0;
	}
	int main(void)
	{
		pthread_t t;
		pthread_create(&t, 0, worker, 0);
		usleep(200000);
		pthread_mutex_lock(&m);
		ready = 1;
		pthread_cond_signal(&c);
		pthread_mutex_unlock(&m);
		pthread_join(t, 0);
		return 0;
	}
	EOF
	gcc -g -pthread -o cv cv.c &&
	SPY_OPTIONS=out=$PWD/cv.log LD_PRELOAD=$LIBSPY ./cv &&
	page_of cv.log cv.html &&
	grep -o "class=\"cond\" x=\"[0-9]*\" y=\"[0-9]*\" width=\"[0-9]*\"" cv.html >cond &&
	cat cond && one_line cond &&
	w=$(sed "s/.*width=\"\([0-9]*\)\"/\1/" cond) &&
	test "$w" -gt 300 &&
	test "$(grep -c "class=\"hold\"" cv.html)" -ge 2
'

test_expect 'livelock: the lock graph shows the failed tries both ways' '
	SPY_OPTIONS=out=$PWD/l.log LD_PRELOAD=$LIBSPY "$DEMOS/livelock" >/dev/null &&
	page_of l.log l.html &&
	grep -o "class=\"edge try\" data-from=\"[^\"]*\" data-to=\"[^\"]*\"" l.html | sort >tries &&
	cat tries &&
	test "$(wc -l <tries)" -eq 2 &&
	grep -q "data-from=\"lock_a\" data-to=\"lock_b\"" tries &&
	grep -q "data-from=\"lock_b\" data-to=\"lock_a\"" tries &&
	! grep -q "class=\"edge cycle\"" l.html
'

test_expect 'export --chrome: Trace Event JSON with threads, lock slices, system calls, the live heap' '
	SPY_OPTIONS=out=$PWD/d.log LD_PRELOAD=$LIBSPY "$DEMOS/deadlock" >/dev/null &&
	"$ANALYZE" export --chrome d.log >d.json &&
	json_check d.json "len([e for e in j[\"traceEvents\"] if e[\"ph\"] == \"M\" and e[\"name\"] == \"thread_name\"]) == 3" &&
	json_check d.json "len([e for e in j[\"traceEvents\"] if e[\"ph\"] == \"X\" and e[\"name\"].startswith(\"hold \") and e[\"cat\"] == \"lock\"]) >= 4" &&
	json_check d.json "all(e[\"dur\"] >= 0 and e[\"ts\"] >= 0 for e in j[\"traceEvents\"] if e[\"ph\"] == \"X\")" &&
	SPY_OPTIONS=out=$PWD/s.log LD_PRELOAD=$LIBSPY "$DEMOS/syscall_overhead" bytes 2000 >/dev/null &&
	"$ANALYZE" export --chrome s.log -o s.json &&
	json_check s.json "sum(e[\"args\"][\"calls\"] for e in j[\"traceEvents\"] if e[\"ph\"] == \"X\" and e.get(\"cat\") == \"syscall\" and e[\"name\"].startswith(\"write\")) >= 2000" &&
	json_check s.json "max(e[\"args\"][\"calls\"] for e in j[\"traceEvents\"] if e[\"ph\"] == \"C\" and e[\"cat\"] == \"syscall\") >= 2000" &&
	{ SPY_OPTIONS=out=$PWD/f.log LD_PRELOAD=$LIBSPY "$DEMOS/fragmentation" >/dev/null; test $? -eq 1; } &&
	"$ANALYZE" export --chrome f.log -o f.json &&
	"$ANALYZE" summary --json f.log >f.sum &&
	python3 - f.json f.sum <<-EOF &&
	import json, sys
	ev = json.load(open(sys.argv[1]))["traceEvents"]
	heap = json.load(open(sys.argv[2]))["heap"]
	c = [e["args"]["bytes"] for e in ev if e["name"] == "heap live bytes"]
	print(len(c), "points, max", max(c), "last", c[-1], "summary", heap)
	# the counter is sampled: it may miss the exact peak, never the end
	sys.exit(0 if 0 < len(c) <= 2100 and c[-1] == heap["live_bytes"] and
	         heap["peak_bytes"] * 0.9 <= max(c) <= heap["peak_bytes"] else 1)
	EOF
	printf "%s\n" "#include <pthread.h>" "static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;" \
		"int main(void) { for (int i = 0; i < 100000; i++) { pthread_mutex_lock(&m); pthread_mutex_unlock(&m); } return 0; }" >lp.c &&
	gcc -g -pthread -o lp lp.c &&
	SPY_OPTIONS=out=$PWD/lp.log LD_PRELOAD=$LIBSPY ./lp &&
	"$ANALYZE" export --chrome lp.log -o lp.json &&
	json_check lp.json "sum(e.get(\"args\", {}).get(\"holds\", 1) for e in j[\"traceEvents\"] if e[\"ph\"] == \"X\" and e[\"name\"].startswith(\"hold \")) == 100000" &&
	rc=0 && "$ANALYZE" export s.log 2>err || rc=$? &&
	test $rc -eq 2 && one_line err && grep -q "needs a format: --chrome (see analyze --help)" err
'

test_expect 'text report: colour on a terminal only, never with NO_COLOR; 80 columns' '
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$DEMOS/deadlock" >/dev/null &&
	{ "$ANALYZE" report t.log >plain.txt; test $? -eq 1; } &&
	! grep -q "$(printf "\033")" plain.txt &&
	script -qc "\"$ANALYZE\" report t.log" /dev/null >tty.txt </dev/null &&
	grep -q "$(printf "\033")\[" tty.txt &&
	NO_COLOR=1 script -qc "\"$ANALYZE\" report t.log" /dev/null >nocolor.txt </dev/null &&
	! grep -q "$(printf "\033")" nocolor.txt &&
	test "$(LC_ALL=C.UTF-8 awk "length > 80" plain.txt | wc -l)" -eq 0
'

test_done
