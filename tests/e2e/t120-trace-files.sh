#!/bin/bash
# t120: where and how libspy writes its trace: the default name, out= with
# %p and %e, mode 0600, no following of symlinks, and a failure to write
# (unwritable place, full disk) that never reaches the program.
. "$(dirname "$0")/lib.sh"

build_victim || { echo "Bail out! cannot build the victim program"; exit 1; }
# Never leave a file system of ours mounted, however this script ends.
trap 'umount "$TEST_DIR/ro" "$TEST_DIR/full" 2>/dev/null' EXIT

# plain_and_traced: runs the victim plainly and traced with the SPY_OPTIONS
# the caller exported; stdout and status must not change.
plain_and_traced() {
	local prc=0 trc=0
	"$VICTIM" say 3 >plain.out 2>plain.err || prc=$?
	LD_PRELOAD=$LIBSPY "$VICTIM" say 3 >traced.out 2>traced.err || trc=$?
	test $prc -eq 3 && test $trc -eq 3 && cmp plain.out traced.out
}

test_expect 'the default trace is spy.<exe>.<pid>.log in the current directory' '
	LD_PRELOAD=$LIBSPY "$VICTIM" pid >out 2>err &&
	pid=$(sed -n "s/^pid //p" out) &&
	test -f "spy.victim.$pid.log" &&
	! test -s err &&
	summary_ok "spy.victim.$pid.log"
'

test_expect 'out= expands %p and %e' '
	mkdir sub &&
	SPY_OPTIONS=out=sub/t-%e-%p.trace LD_PRELOAD=$LIBSPY "$VICTIM" pid >out 2>err &&
	pid=$(sed -n "s/^pid //p" out) &&
	test -f "sub/t-victim-$pid.trace" &&
	! ls spy.*.log &&
	summary_ok "sub/t-victim-$pid.trace"
'

test_expect 'the trace is created with mode 0600, whatever the umask' '
	(umask 000 && LD_PRELOAD=$LIBSPY SPY_OPTIONS=out=a.log "$VICTIM" exit 0) &&
	(umask 022 && LD_PRELOAD=$LIBSPY SPY_OPTIONS=out=b.log "$VICTIM" exit 0) &&
	test "$(stat -c %a a.log)" = 600 &&
	test "$(stat -c %a b.log)" = 600
'

test_expect 'a symlink at the out path is not followed; one warning; the program runs' '
	echo keep >target &&
	ln -s target link.log &&
	LD_PRELOAD=$LIBSPY SPY_OPTIONS=out=link.log "$VICTIM" exit 3 >out 2>err; rc=$? &&
	test $rc -eq 3 &&
	test "$(cat target)" = keep && test -L link.log &&
	one_line err &&
	ln -s no-such-target dangling.log &&
	LD_PRELOAD=$LIBSPY SPY_OPTIONS=out=dangling.log "$VICTIM" pid >out 2>err &&
	grep -q "^pid " out &&
	! test -e no-such-target && one_line err
'

test_expect 'an unwritable place: one warning, same stdout and status' '
	echo "a file, not a directory" >notadir &&
	SPY_OPTIONS=out=$PWD/notadir/t.log plain_and_traced &&
	one_line traced.err &&
	SPY_OPTIONS=out=/proc/no-such-dir/t.log plain_and_traced &&
	one_line traced.err
'

# Growing a file past RLIMIT_FSIZE raises SIGXFSZ, which kills: the trace
# must stop at the limit instead, as on a full disk. (The output goes
# through a pipe: the limit applies to the test's files too.)
test_expect 'a file size limit (ulimit -f): one warning, no SIGXFSZ' '
	for kib in 0 16 20 32; do
		(ulimit -f $kib &&
		 SPY_OPTIONS=out=$TEST_DIR/t$kib.log LD_PRELOAD=$LIBSPY \
			"$VICTIM" say 3; echo "status $?") 2>&1 | cat >out$kib &&
		cat out$kib &&
		grep -q "^status 3$" out$kib &&
		test "$(grep -c "^spy: cannot write trace .*File too large" out$kib)" = 1 ||
		return 1
	done
'

# libspy's warnings on a stderr that is a file the limit leaves no room
# in (a log the program appends to, grown to it) would raise SIGXFSZ too:
# such a line is left out, whole; with room it is written, whole. The
# warnings of start-up (no place for the trace, a bad option), and one
# from after libspy's signal handlers are in place (a bad option read
# late); each run also meets the limit in its own trace.
# under_fsize FILE OPTIONS: the victim under a 4 KiB limit, stderr
# appended to FILE; out holds its status. (No tracing of the shell's
# commands there: the test's log is past the limit.)
under_fsize() {
	(set +x && ulimit -f 4 &&
	 SPY_OPTIONS=$2 LD_PRELOAD=$LIBSPY "$VICTIM" say 3 2>>"$1"
	 echo "status $?") | cat >out
	cat out && grep -qx "status 3" out
}
test_expect 'stderr a file with no room under ulimit -f: the warning is left out, no SIGXFSZ' '
	for opts in out=$PWD/notadir/t.log bogus=1:out=$PWD/t.log \
		    out=$PWD/t.log:syscalls=bogus; do
		head -c 4096 /dev/zero >full.err && under_fsize full.err $opts &&
		test "$(stat -c %s full.err)" = 4096 &&
		head -c 4080 /dev/zero >nearly.err && under_fsize nearly.err $opts &&
		test "$(stat -c %s nearly.err)" = 4080 &&
		echo before >room.err && under_fsize room.err $opts &&
		grep -q "^spy: " room.err && test "$(grep -vc "^spy: " room.err)" = 1 &&
		test "$(wc -l <room.err)" = "$(grep -c "" room.err)" || return 1
	done
'

test_expect 'stderr cut short under the program (ulimit -f): the warning is left out at its offset' '
	head -c 4096 /dev/zero >cut.err &&
	(set +x && ulimit -f 4 && exec 2<>cut.err && head -c 4096 /dev/zero >&2 &&
	 truncate -s 0 cut.err &&
	 SPY_OPTIONS=out=$PWD/notadir/t.log LD_PRELOAD=$LIBSPY "$VICTIM" say 3
	 echo "status $?") | cat >out &&
	cat out && grep -qx "status 3" out &&
	test "$(stat -c %s cut.err)" = 0
'

# A program under a low limit on descriptors (ulimit -n) may need every
# one it is allowed: libspy's own (the trace, the unwinder's pipe) go past
# the limit when it can be raised for a moment (a soft limit under the
# hard one), and otherwise, under a tiny limit, are not taken at all.
cat >"$TEST_DIR/fdcount.c" <<'CEOF'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	int n = 0, fd, first = -1;
	while ((fd = open("/dev/null", O_RDONLY)) >= 0) {
		if (first < 0)
			first = fd;
		n++;
		free(malloc(100 + n)); /* something to record */
	}
	printf("opened %d, the first as %d\n", n, first);
	return 0;
}
CEOF

# The usual soft limit (1024, as systemd and login give) too: a server
# that reaches it must accept as many connections as without libspy.
limits='-Sn\ 5 -Sn\ 40 -n\ 5 -n\ 20'
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 1024 ]; then
	limits="$limits -Sn\\ 1024"
fi
test_expect 'a low limit on descriptors (ulimit -n): the program opens as many as without libspy' '
	gcc -O1 -o fdcount "$TEST_DIR/fdcount.c" &&
	for lim in '"$limits"'; do
		rm -f fd.log &&
		sh -c "ulimit $lim && exec ./fdcount" >plain.out &&
		sh -c "ulimit $lim && SPY_OPTIONS=out=$PWD/fd.log LD_PRELOAD=$LIBSPY exec ./fdcount" >traced.out 2>traced.err &&
		cat plain.out && cmp plain.out traced.out &&
		if test -s traced.err; then
			one_line traced.err && grep -q "Too many open files; the program runs on untraced" traced.err &&
			case $lim in -Sn*) false ;; esac
		else
			summary_ok fd.log
		fi || return 1
	done
'

# libspy's own descriptors (the trace, the unwinder's pipe) are not in a
# listing of the process's descriptors, and nothing else is hidden.
test_expect 'a listing of /proc/self/fd or /dev/fd shows the program'\''s descriptors only' '
	gcc -O1 -o fdlist "$FIXTURES/fdlist.c" &&
	same_output fdlist ../fdlist &&
	same_output fdlist-dev ../fdlist /dev/fd/ &&
	same_output ls-fd sh -c "ls /proc/self/fd; ls -l /proc/self/fd/ | wc -l" &&
	same_output py-fd /usr/bin/python3 -c "import os, threading; print(sorted(os.listdir(\"/proc/self/fd\")), sorted(os.listdir(\"/proc/%d/task/%d/fd\" % (os.getpid(), threading.get_native_id()))))" &&
	mkdir -p numbers && touch numbers/900 numbers/901 numbers/902 numbers/3 &&
	same_output numbers ../fdlist "$PWD/numbers" &&
	grep -qx 902 traced.out &&
	same_output other ../fdlist /proc/1/fd &&
	SPY_OPTIONS=out=$PWD/own.log LD_PRELOAD=$LIBSPY ls -l /proc/self/fd/ >own.out &&
	! grep -q own.log own.out && summary_ok own.log
'

# The trace's windows are mapped where their addresses and file offsets
# agree modulo 2 MiB, so that a large folio of the page cache never
# straddles two page tables (spy_writer.c, map_window): a program prints
# its own mappings of the trace after recording enough to have grown its
# window to the largest size, and a thread of its own.
cat >"$TEST_DIR/windows.c" <<'CEOF'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *churn(void *arg)
{
	for (long i = 0; i < (long)arg; i++) {
		char *volatile p = malloc(16 + i % 512);
		free(p);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	if (argc < 2 || pthread_create(&t, NULL, churn, (void *)20000L))
		return 2;
	churn((void *)400000L);
	pthread_join(t, NULL);
	char line[4096];
	FILE *f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, argv[1]))
			fputs(line, stdout);
	return 0;
}
CEOF

test_expect 'the trace windows lie where address and file offset agree modulo 2 MiB' '
	gcc -O1 -pthread -o windows "$TEST_DIR/windows.c" &&
	SPY_OPTIONS=out=$PWD/win.log LD_PRELOAD=$LIBSPY ./windows win.log >maps &&
	cat maps &&
	test "$(wc -l <maps)" -ge 2 &&
	grep -q "^[0-9a-f]*-[0-9a-f]* rw-s " maps &&
	while read -r range perms off rest; do
		start=$((0x${range%-*})) end=$((0x${range#*-})) &&
		test $(((start - 0x$off) % (2 << 20))) = 0 &&
		echo "$perms $((end - start))" || return 1
	done <maps >sizes &&
	grep -qx "rw-s $((1 << 20))" sizes &&
	summary_ok win.log
'

if [ "$(id -u)" -eq 0 ] && mkdir ro && mount -t tmpfs -o ro,size=64k tmpfs ro 2>/dev/null; then
	test_expect 'a read-only file system: one warning, same stdout and status' '
		SPY_OPTIONS=out=$TEST_DIR/ro/t.log plain_and_traced &&
		one_line traced.err &&
		! ls "$TEST_DIR"/ro/t.log
	'
	umount ro
else
	test_skip 'a read-only file system' 'cannot mount a tmpfs here (not root?)'
fi

if [ "$(id -u)" -eq 0 ] && mkdir full && mount -t tmpfs -o size=64k tmpfs full 2>/dev/null; then
	test_expect 'a full disk: one warning, same stdout and status' '
		dd if=/dev/zero of="$TEST_DIR/full/fill" bs=4k count=64 2>/dev/null;
		test "$(df --output=avail "$TEST_DIR/full" | tail -n 1 | tr -d " ")" -lt 8 &&
		SPY_OPTIONS=out=$TEST_DIR/full/t.log plain_and_traced &&
		one_line traced.err
	'
	test_expect 'a disk that fills up while tracing: one warning, the program is unaffected' '
		rm -f "$TEST_DIR"/full/* &&
		dd if=/dev/zero of="$TEST_DIR/full/fill" bs=1k count=52 2>/dev/null &&
		python3 "$FIXTURES/threads.py" >plain.out &&
		SPY_OPTIONS=out=$TEST_DIR/full/t.log LD_PRELOAD=$LIBSPY \
			python3 "$FIXTURES/threads.py" >traced.out 2>err &&
		cmp plain.out traced.out &&
		say "trace: $(stat -c %s "$TEST_DIR/full/t.log" 2>&1)" &&
		one_line err
	'
	umount full
else
	test_skip 'a full disk' 'cannot mount a tmpfs here (not root?)'
	test_skip 'a disk that fills up while tracing' 'cannot mount a tmpfs here'
fi

test_done
