#!/bin/bash
# t420: analyze map names the regions of the address space and analyze
# where places the stack_heap demo's own addresses (code, variables, stack,
# heap blocks, read-only data); the virtual_memory demo leaves two traces,
# each with its own page-fault counts, and the same virtual address in both.
. "$(dirname "$0")/lib.sh"

DEMOS=$TOP/demos

# where_is TRACE ADDR PYTHON-EXPR: `analyze where --json` of ADDR satisfies EXPR.
where_is() {
	"$ANALYZE" where --json "$1" "$2" >w.json &&
	json_check w.json "$3"
}

# addr_of LABEL: the address the stack_heap demo printed on LABEL's line.
addr_of() { grep "^$1" sh.out | grep -o '0x[0-9a-f]*' | head -n 1; }

test_expect 'stack_heap: output unchanged, map has text, data, heap and the main stack' '
	"$DEMOS/stack_heap" >plain.out &&
	SPY_OPTIONS=out=sh.log traced "$DEMOS/stack_heap" >sh.out &&
	diff <(cut -c1-38 plain.out) <(cut -c1-38 sh.out) &&
	"$ANALYZE" map --json sh.log >map.json &&
	json_check map.json "set(r[\"kind\"] for r in j[\"regions\"]) >= {\"text\", \"data\", \"read-only data\", \"heap\", \"stack\", \"mmap\"}" &&
	json_check map.json "any(r[\"kind\"] == \"text\" and (r[\"path\"] or \"\").endswith(\"/stack_heap\") for r in j[\"regions\"])" &&
	"$ANALYZE" map sh.log >map.txt && grep " heap  *brk heap" map.txt && grep "stack of thread [0-9]* (main)" map.txt
'

test_expect 'where: the demo'\''s code, variables, stack, heap blocks and literal' '
	SPY_OPTIONS=out=sh.log traced "$DEMOS/stack_heap" >sh.out &&
	where_is sh.log "$(addr_of "function main")" "j[\"region\"][\"kind\"] == \"text\" and j[\"symbol\"] == \"main\"" &&
	where_is sh.log "$(addr_of "global int")" "j[\"region\"][\"kind\"] in (\"data\", \"bss\") and j[\"symbol\"] == \"global_counter\"" &&
	where_is sh.log "$(addr_of "static char")" "j[\"region\"][\"kind\"] in (\"data\", \"bss\") and j[\"symbol\"] == \"static_buffer\"" &&
	where_is sh.log "$(addr_of "local int")" "j[\"region\"][\"kind\"] == \"stack\" and j[\"block\"] is None" &&
	where_is sh.log "$(addr_of "malloc(64)")" "j[\"region\"][\"kind\"] == \"heap\" and j[\"block\"][\"size\"] == 64 and j[\"block\"][\"offset\"] == 0" &&
	where_is sh.log "$(addr_of "malloc(1 MiB)")" "j[\"region\"][\"kind\"] == \"mmap\" and j[\"block\"][\"size\"] == 1048576" &&
	where_is sh.log "$(addr_of "string literal")" "j[\"region\"][\"kind\"] == \"read-only data\"" &&
	"$ANALYZE" where sh.log "$(addr_of "malloc(64)")" >w.txt &&
	grep "^    64 bytes at 0x" w.txt && grep "main at .*stack_heap.c" w.txt
'

test_expect 'where: a bad or missing address is a usage error (status 2)' '
	SPY_OPTIONS=out=sh.log traced "$DEMOS/stack_heap" >/dev/null &&
	{ "$ANALYZE" where sh.log 0xzz 2>err; test $? = 2; } && one_line err &&
	{ "$ANALYZE" where sh.log 2>err; test $? = 2; } &&
	{ "$ANALYZE" map sh.log 0x10 2>err; test $? = 2; }
'

test_expect 'a thread'\''s stack is on the map' '
	SPY_OPTIONS=out=st.log traced "$DEMOS/scheduling_tax" 3 >/dev/null &&
	"$ANALYZE" map --json st.log >map.json &&
	json_check map.json "len([r for r in j[\"regions\"] if r[\"kind\"] == \"stack\" and r[\"thread\"]]) >= 2" &&
	"$ANALYZE" map st.log | grep "stack of thread [0-9]"
'

test_expect 'virtual_memory: two traces, same address, each with its page faults' '
	SPY_OPTIONS=out=vm.%p.log traced "$DEMOS/virtual_memory" >vm.out &&
	test "$(ls vm.*.log | wc -l)" = 2 &&
	test "$(grep -o "&shared_looking = 0x[0-9a-f]*" vm.out | sort -u | wc -l)" = 1 &&
	for t in vm.*.log; do
		"$ANALYZE" report --json "$t" >"$t.json" &&
		json_check "$t.json" "j[\"machine\"][\"minor_faults\"] > 0 and j[\"machine\"][\"threads_created\"] == 0 and j[\"machine\"][\"peak_live_threads\"] == 1" &&
		"$ANALYZE" report "$t" >"$t.txt" &&
		tr -s "\n " " " <"$t.txt" | grep "machine .* page faults: [0-9]* minor, [0-9]* major" || return 1
	done
'

test_expect 'virtual_memory: frame numbers printed as root, or the demo says why not' '
	"$DEMOS/virtual_memory" >vm.out &&
	if [ "$(id -u)" = 0 ]; then
		test "$(grep -c "physical frame 0x[0-9a-f]" vm.out)" = 3
	else
		grep -i "root\|CAP_SYS_ADMIN\|hidden" vm.out
	fi
'

test_done
