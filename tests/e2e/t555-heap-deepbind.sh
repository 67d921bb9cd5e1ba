#!/bin/bash
# t555: a library loaded with RTLD_DEEPBIND (php's extensions) binds its
# malloc-family calls to the C library before libspy's hooks; blocks
# crossing between it and the program must still reach the allocator that
# made them. They did not: guard mode aborted in glibc's free ("free():
# invalid pointer"), and the default mode read glibc's reuse of blocks it
# still held as live as overruns of them, and as leaks.
. "$(dirname "$0")/lib.sh"

HEAP_KINDS='("heap-overflow", "use-after-free", "double-free", "invalid-free", "mismatched-free", "crash", "leak")'

# build_deepbind BIND: the program and its plugin, linked with -z BIND
# (lazy: slots bound at the first call; now: bound at load, read-only).
build_deepbind() {
	gcc -O1 -g -o deepbind "$FIXTURES/deepbind.c" -ldl &&
	gcc -O1 -g -shared -fPIC -DPLUGIN -Wl,-z,"$1",-z,relro -o libdeep.so "$FIXTURES/deepbind.c" &&
	./deepbind ./libdeep.so >plain.out &&
	test "$(cat plain.out)" = "$(printf "from the plugin\ndone")"
}

for bind in lazy now; do
	test_expect "a deep-bound plugin ($bind binding) frees and reallocates the program's blocks: no finding" '
		build_deepbind '$bind' &&
		SPY_OPTIONS=out=$PWD/d.log LD_PRELOAD=$LIBSPY ./deepbind ./libdeep.so >out &&
		cmp plain.out out &&
		report_json d.log &&
		json_check d.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] in $HEAP_KINDS]"
	'

	test_expect "guard mode: a deep-bound plugin ($bind binding) frees a guarded block: the program runs on" '
		build_deepbind '$bind' &&
		SPY_OPTIONS=out=$PWD/g.log:guard=1 LD_PRELOAD=$LIBSPY ./deepbind ./libdeep.so >out &&
		cmp plain.out out &&
		report_json g.log &&
		json_check g.log.json "not [x for x in j[\"findings\"] if x[\"kind\"] in $HEAP_KINDS]"
	'
done

# php loads every extension (pdo, json, ...) with RTLD_DEEPBIND.
if command -v php >/dev/null 2>&1; then
	for mode in 0 1; do
		test_expect "php with its extensions (guard=$mode): same stdout and status, no heap finding" '
			SPY_OPTIONS=guard='$mode' same_output php php -r "\$a = []; for (\$i = 0; \$i < 20000; \$i++) \$a[\"k\$i\"] = str_repeat(\"x\", \$i % 10); echo count(\$a), \"\\n\";" &&
			for t in traced/trace.*.log; do
				report_json "$t" "$t.json" &&
				json_check "$t.json" "not [x for x in j[\"findings\"] if x[\"kind\"] in $HEAP_KINDS]" || return 1
			done
		'
	done
else
	test_skip "php with its extensions" "php is not installed"
fi

test_done
