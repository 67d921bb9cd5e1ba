#!/bin/bash
# t146: a program that closes every descriptor it did not open (closefrom,
# close_range, a loop of close, the same through syscall(), or a file of
# its own put on 900..999 first) and then drops root's privileges, as
# varnishd does. libspy's trace went with the rest; once the program ran
# as another user it could not be opened again by its name (root's, mode
# 0600), and libspy said so on the program's stderr (varnishd shows it as
# its own output); a close loop also found libspy's descriptors open. Now
# libspy's descriptors outlive the program's closes, and the trace moves
# out of the way of a dup2: the program's output, the numbers its opens
# give and its status are a plain run's, and the trace holds what it did
# after.
. "$(dirname "$0")/lib.sh"

CA=$TEST_DIR/closeall
gcc -std=gnu11 -O0 -g -pthread -o "$CA" "$FIXTURES/closeall.c" || exit 1
if [ "$(id -u)" -eq 0 ]; then
	drop="then drops root's privileges"
else
	drop="(not root: no privileges to drop)"
fi

# ca HOW: the fixture plain and traced: the same status, both outputs
# byte-identical, its opens given 3 as without libspy; the trace holds the
# block allocated after the closes and every allocation of both threads,
# and ends.
ca() {
	local prc=0 trc=0
	rm -rf traced && mkdir traced || return 1
	"$CA" "$1" >plain.out 2>plain.err || prc=$?
	SPY_OPTIONS=out=$PWD/traced/t.%p.log LD_PRELOAD=$LIBSPY "$CA" "$1" \
		>traced.out 2>traced.err || trc=$?
	say "closeall $1: status $prc plain, $trc traced; stderr: $(cat traced.err)" &&
	test "$prc" = "$trc" && cmp plain.out traced.out &&
	cmp plain.err traced.err &&
	grep -qx "first open: 3" traced.out &&
	grep -qx "open after it: 3" traced.out &&
	set -- traced/t.*.log && test $# -eq 1 &&
	"$ANALYZE" dump "$1" >dump.txt &&
	grep -q "malloc 0x[0-9a-f]* size 424242" dump.txt &&
	summary_json "$1" &&
	json_check "$1.json" "j[\"calls\"][\"malloc\"] >= 40001 and j[\"trace\"][\"complete\"]"
}

test_expect "closefrom, close_range, a loop of close, the same through syscall(), $drop: the program runs as without libspy, and is traced to its end" '
	for how in closefrom range loop rawclose rawrange; do
		ca $how || return 1
	done
'

test_expect "the same under ulimit -n 1024 and 64 (libspy's descriptors elsewhere)" '
	for lim in 1024 64; do
		(ulimit -n $lim && ca closefrom && ca loop) || return 1
	done
'

test_expect "a file of its own put on 900..999 (where libspy keeps its own), then closefrom, $drop: the trace moves out of the way" '
	ca dup2 && grep -qx "dup2: 100" traced.out
'

# The trace is lost when a close libspy does not see takes it and the
# program can no longer open it: that is said nowhere but in the trace,
# which ends early (a line on the program's stderr would change its output).
if [ "$(id -u)" -eq 0 ]; then
	test_expect "close_range by the system call instruction itself, then setuid: the trace ends there, nothing on the program's stderr" '
		rm -rf traced && mkdir traced &&
		"$CA" inline >plain.out 2>plain.err &&
		SPY_OPTIONS=out=$PWD/traced/t.%p.log LD_PRELOAD=$LIBSPY "$CA" inline \
			>traced.out 2>traced.err &&
		say "stderr: $(cat traced.err)" &&
		cmp plain.out traced.out && cmp plain.err traced.err &&
		set -- traced/t.*.log && test $# -eq 1 &&
		summary_json "$1" &&
		json_check "$1.json" "not j[\"trace\"][\"complete\"]"
	'
else
	test_skip "close_range by the system call itself, then setuid" "not root: no privileges to drop"
fi

# A process a traced one started, whose trace cannot be made (it runs as
# a user who may not write where the traces go), says nothing on a stderr
# that is not a terminal; the process that started it is traced.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	test_expect "setpriv to nobody, then exec: echo's trace cannot be made, and its stderr stays empty" '
		rm -rf traced && mkdir -m 755 traced &&
		SPY_OPTIONS=out=$PWD/traced/t.%p.log LD_PRELOAD=$LIBSPY \
			setpriv --reuid=65534 --regid=65534 --clear-groups \
			/bin/echo hi >traced.out 2>traced.err &&
		say "stderr: $(cat traced.err)" &&
		test "$(cat traced.out)" = hi && ! test -s traced.err &&
		set -- traced/t.*.log && test $# -eq 1 &&
		summary_json "$1" &&
		json_check "$1.json" "j[\"process\"][\"exe\"].endswith(\"setpriv\")"
	'
	test_expect "the same process started with libspy itself still says it runs untraced" '
		SPY_OPTIONS=out=$PWD/traced/t.%p.log \
			setpriv --reuid=65534 --regid=65534 --clear-groups \
			env LD_PRELOAD=$LIBSPY /bin/echo hi >traced.out 2>traced.err &&
		say "stderr: $(cat traced.err)" &&
		test "$(cat traced.out)" = hi &&
		grep -q "^spy: cannot create trace" traced.err
	'
else
	test_skip "setpriv to nobody, then exec" "not root, or no setpriv"
	test_skip "the same process started with libspy itself" "not root, or no setpriv"
fi

# varnishd -C compiles its configuration in a child that closes every
# descriptor and runs as the varnish user, and prints what the compiler
# made on its stderr. Its traces go where that user may write too.
if command -v varnishd >/dev/null && [ -r /etc/varnish/default.vcl ]; then
	test_expect 'varnishd -C: its output as without libspy, every trace complete' '
		v=$(mktemp -d /tmp/libspy-t146.XXXXXX) && chmod 777 "$v" &&
		mkdir -m 777 "$v/t" || return 1
		prc=0 trc=0
		varnishd -C -n "$v/n" -f /etc/varnish/default.vcl >plain.out 2>plain.err || prc=$?
		SPY_OPTIONS=out=$v/t/varnishd.%p.log LD_PRELOAD=$LIBSPY \
			varnishd -C -n "$v/n" -f /etc/varnish/default.vcl >traced.out 2>traced.err || trc=$?
		cp -r "$v/t" traces
		rm -rf "$v"
		say "status $prc plain, $trc traced; $(ls traces | wc -l) traces" &&
		test "$prc" = "$trc" && ! grep "^spy:" traced.err &&
		cmp plain.out traced.out && cmp plain.err traced.err &&
		for t in traces/*.log; do
			summary_json "$t" &&
			json_check "$t.json" "j[\"trace\"][\"complete\"]" || return 1
		done
	'
else
	test_skip 'varnishd -C: its output as without libspy' 'varnishd is not installed'
fi

test_done
