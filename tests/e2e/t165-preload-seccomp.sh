#!/bin/bash
# t165: a program that confines its own system calls (seccomp: a filter
# that kills on anything else, or strict mode) and then keeps working.
# libspy's own system calls after that (a new window of the trace, a
# thread's end, the exit scan) would kill it: the trace ends where the
# program confines itself, with a note, and the program runs on as it
# would without libspy.
. "$(dirname "$0")/lib.sh"

SC=$TEST_DIR/seccomp
gcc -std=gnu11 -O0 -g -pthread -o "$SC" "$FIXTURES/seccomp.c" || exit 1

# sc MODE: runs the fixture plain and traced, compares; t.log is the trace.
sc() {
	same_output "seccomp $1" "$SC" "$1" &&
	grep -qx "ok $1" traced.out &&
	set -- traced/trace.seccomp.*.log &&
	test $# -eq 1 && cp "$1" t.log
}

# noted: the trace reads, and says where it ended and why.
noted() {
	summary_json t.log &&
	json_check t.log.json "any('seccomp' in n['text'] for n in j['notes'])" &&
	json_check t.log.json "j['calls']['malloc'] >= 1"
}

test_expect 'a seccomp filter through prctl: same output and status, a trace with a note' '
	sc prctl && noted
'

test_expect 'a filter on every thread through syscall(), threads before and after it' '
	sc syscall && noted
'

test_expect 'strict mode (no time stamp counter either): same output and status' '
	sc strict && noted
'

test_expect 'probes that install nothing leave tracing on' '
	cat >probe.c <<-EOF &&
	#include <linux/seccomp.h>
	#include <stdio.h>
	#include <stdlib.h>
	#include <sys/syscall.h>
	#include <unistd.h>
	int main(void)
	{
		/* as libseccomp probes the kernel: bad flags, a null filter */
		syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 1, NULL);
		syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, NULL);
		free(malloc(10));
		puts("probed");
		return 0;
	}
	EOF
	gcc -o probe probe.c &&
	SPY_OPTIONS=out=p.log LD_PRELOAD=$LIBSPY ./probe >out &&
	grep -qx probed out &&
	summary_json p.log &&
	json_check p.log.json "not j[\"notes\"] and j[\"calls\"][\"malloc\"] >= 1" &&
	json_check p.log.json "j[\"process\"][\"exit\"][\"status\"] == 0"
'

test_done
