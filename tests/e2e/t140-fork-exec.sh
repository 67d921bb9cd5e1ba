#!/bin/bash
# t140: a forked child writes its own trace naming its parent; an exec'd
# image writes its own trace; a forked child that only execs leaves no
# trace of its own (its image names the forking process); posix_spawn and
# vfork keep working.
. "$(dirname "$0")/lib.sh"

build_victim || { echo "Bail out! cannot build the victim program"; exit 1; }
export SPY_OPTIONS="out=$TEST_DIR/tr.%e.%p.log"

# names_parent JSON PARENT_TRACE: the summary names the parent's trace.
names_parent() {
	json_check "$1" "
any(str(v).endswith('/$(basename "$2")') or str(v) == '$(basename "$2")'
    for v in (j['process'].get('parent_trace'), j.get('parent_trace')))"
}

test_expect 'fork: parent and child each write a trace; the child names its parent' '
	LD_PRELOAD=$LIBSPY "$VICTIM" fork >out 2>err &&
	parent=$(sed -n "s/^parent \([0-9]*\) .*/\1/p" out) &&
	child=$(sed -n "s/^child \([0-9]*\) .*/\1/p" out) &&
	test -n "$parent" && test -n "$child" &&
	P=$TEST_DIR/tr.victim.$parent.log && C=$TEST_DIR/tr.victim.$child.log &&
	test -f "$P" && test -f "$C" &&
	summary_ok "$P" && summary_json "$C" &&
	json_check "$C.json" "j[\"process\"][\"pid\"] == $child and j[\"process\"][\"ppid\"] == $parent" &&
	names_parent "$C.json" "$P" &&
	summary_json "$P" &&
	json_check "$P.json" "j[\"process\"][\"pid\"] == $parent" &&
	! names_parent "$P.json" "$C"
'

test_expect 'fork: the child trace records its own exit status' '
	LD_PRELOAD=$LIBSPY "$VICTIM" fork >out 2>err &&
	child=$(sed -n "s/^child \([0-9]*\) .*/\1/p" out) &&
	summary_json "$TEST_DIR/tr.victim.$child.log" &&
	json_check "$TEST_DIR/tr.victim.$child.log.json" "j[\"process\"][\"exit\"][\"status\"] == 0 and j[\"process\"][\"exit\"][\"signal\"] is None"
'

test_expect 'exec: the exec'\''d image writes its own trace with the same pid' '
	cp "$VICTIM" newimage &&
	rc=0 && LD_PRELOAD=$LIBSPY "$VICTIM" exec "$PWD/newimage" exit 4 >out 2>err || rc=$? &&
	test $rc -eq 4 &&
	pid=$(sed -n "s/^pid //p" out) &&
	A=$TEST_DIR/tr.victim.$pid.log && B=$TEST_DIR/tr.newimage.$pid.log &&
	test -f "$A" && test -f "$B" &&
	summary_ok "$A" && summary_json "$B" &&
	json_check "$B.json" "j[\"process\"][\"pid\"] == $pid and j[\"process\"][\"exit\"][\"status\"] == 4" &&
	names_parent "$B.json" "$A"
'

# trace_of TRACE: "cause parent-basename" from the summary
trace_of() {
	"$ANALYZE" summary --json "$1" | python3 -c "
import json, os, sys
p = json.load(sys.stdin)[\"process\"]
print(p[\"cause\"], os.path.basename(p.get(\"parent_trace\") or \"-\"))"
}

test_expect 'fork then exec with nothing between: one trace, named after the image, child of the forker' '
	mkdir fe && cd fe &&
	SPY_OPTIONS=out=$PWD/t.%e.%p.log LD_PRELOAD=$LIBSPY bash -c "/bin/ls / >/dev/null; /bin/true; echo done" >out && grep -x done out &&
	ls t.*.log >list && cat list &&
	test $(grep -c "^t\.bash\." list) = 1 && test $(wc -l <list) = 3 &&
	b=$(grep "^t\.bash\." list) &&
	for img in ls true; do
		t=$(grep "^t\.$img\." list) && test "$(trace_of $t)" = "fork $b" || return 1
	done
'

test_expect 'fork, a write, then exec: the child keeps its trace, the image names it' '
	mkdir fw && cd fw &&
	SPY_OPTIONS=out=$PWD/t.%e.%p.log LD_PRELOAD=$LIBSPY bash -c "(echo before; exec /bin/true)" >out &&
	grep -x before out &&
	ls t.*.log >list && cat list && test $(wc -l <list) = 3 &&
	for t in t.bash.*.log; do
		case "$(trace_of $t)" in start*) b=$t ;; *) c=$t ;; esac
	done &&
	test "$(trace_of $c)" = "fork $b" &&
	test "$(trace_of $(grep "^t\.true\." list))" = "exec $c"
'

test_expect 'posix_spawn and vfork keep working; every process leaves a trace' '
	"$VICTIM" spawn >plain.out &&
	LD_PRELOAD=$LIBSPY "$VICTIM" spawn >out 2>err &&
	cmp plain.out out &&
	n=0 && for t in "$TEST_DIR"/tr.*.log; do
		summary_ok "$t" || exit 1; n=$((n + 1))
	done &&
	say "$n traces" && ls "$TEST_DIR"/tr.echo.*.log
'

# LD_PRELOAD=./libspy.so, as a user types it, from the directory libspy
# is in; OUT is the trace pattern.
relative_preload() {
	local out=$1
	shift
	ln -sf "$LIBSPY" libspy.so &&
	LD_PRELOAD=./libspy.so SPY_OPTIONS=out=$out "$@"
}

test_expect 'LD_PRELOAD=./libspy.so and a cd before an exec: the program run is still traced, with no loader error' '
	relative_preload "$PWD/rel.%e.%p.log" sh -c "echo \$LD_PRELOAD; cd / && ls -d /" >out 2>err &&
	! grep -q "ld.so" err && test "$(cat out)" = "./libspy.so
/" &&
	test -f rel.ls.*.log && summary_ok rel.ls.*.log
'

test_expect 'the same through python3: os.chdir, then os.system (posix_spawn, from the environment)' '
	relative_preload "$PWD/py.%e.%p.log" python3 -c "import os; os.chdir(\"/\"); os.system(\"ls -d /\")" >out 2>err &&
	! grep -q "ld.so" err && test "$(cat out)" = "/" &&
	test -f py.ls.*.log && summary_ok py.ls.*.log
'

test_expect 'an exec with libspy taken out of the environment (env -i, env -u) passes on none of its variables' '
	LD_PRELOAD=$LIBSPY env -i env >out 2>err &&
	! test -s out && ! test -s err &&
	LD_PRELOAD=$LIBSPY env -i A=1 sh -c "env; exec env" >out 2>err &&
	say "$(cat out)" && ! grep -q "^SPY_TRACE" out &&
	LD_PRELOAD=$LIBSPY env -u LD_PRELOAD sh -c "env" >out 2>err &&
	! grep -q "^SPY_TRACE" out
'

test_expect 'spy lists the traces of the children it can find' '
	rm -f "$TEST_DIR"/tr.* &&
	cd "$TEST_DIR" && mkdir spyrun && cd spyrun &&
	SPY_OPTIONS= "$SPY" --no-report "$VICTIM" fork >out 2>err &&
	child=$(sed -n "s/^child \([0-9]*\) .*/\1/p" out) &&
	grep -F "spy.victim.$child.log" err
'

# Threads that keep meeting new call sites (so they keep unwinding) and
# now and then load a library, while the main thread forks: libunwind
# holds locks of its own while it unwinds, and the loader holds its lock
# in dlopen, dlclose and dl_iterate_phdr (which libunwind calls); a child
# forked meanwhile found one held and hung at its first new stack (every
# run hung within 300 forks).
cat >"$TEST_DIR/forkstorm.c" <<'EOF'
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile int stop;
#define SITE(n) static __attribute__((noinline)) void *site##n(size_t s) { return malloc(s + n); }
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)
static void *(*sites[])(size_t) = { site0, site1, site2, site3, site4, site5, site6, site7 };
static __attribute__((noinline)) void dive(int d, unsigned *x)
{
	if (d > 0) {
		dive(d - 1, x);
		return;
	}
	*x = *x * 1103515245 + 12345;
	free(sites[*x % 8](*x % 300));
}
static void *churn(void *a)
{
	unsigned x = (unsigned)(long)a;
	while (!stop) {
		x = x * 1103515245 + 12345;
		dive(x % 40, &x);
		if (x % 1000 == 0) {
			void *h = dlopen("libm.so.6", RTLD_NOW);
			if (h)
				dlclose(h);
		}
	}
	return NULL;
}
int main(void)
{
	pthread_t t[2];
	for (long i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn, (void *)(i + 1));
	int ok = 0;
	for (int i = 0; i < 300; i++) {
		pid_t p = fork();
		if (p == 0) {
			unsigned x = 7;
			dive(5 + i % 30, &x);
			_exit(i % 2 ? 0 : 3);
		}
		int st;
		waitpid(p, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == (i % 2 ? 0 : 3))
			ok++;
	}
	stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("%d ok\n", ok);
	return 0;
}
EOF

test_expect 'fork 300 times while two threads unwind new stacks and load a library: no child hangs, each leaves a trace with its status and whole stacks' '
	gcc -O1 -g -pthread -o forkstorm "$TEST_DIR/forkstorm.c" -ldl &&
	mkdir tr && SPY_OPTIONS=out=$PWD/tr/t.%p.log LD_PRELOAD=$LIBSPY timeout 120 ./forkstorm >out &&
	test "$(cat out)" = "300 ok" &&
	test "$(ls tr | wc -l)" = 302 && # timeout, forkstorm, 300 children
	for t in $(ls tr | head -20); do "$ANALYZE" summary tr/$t >/dev/null || return 1; done &&
	whole=0 &&
	for t in $(ls -t tr/* | sed -n 2,21p); do
		"$ANALYZE" heap $t >heap.txt || return 1
		if grep -q "#1  dive at .*forkstorm.c" heap.txt; then
			whole=$((whole + 1))
		else
			say "$t: no whole stack"; head -n 12 heap.txt
		fi
	done &&
	say "$whole of 20 children with whole stacks" &&
	# a child forked while a thread was inside the unwinder does without
	# it and keeps innermost frames: now and then one, never most (how
	# many depends on how the threads were scheduled: 13 of 20 seen on a
	# loaded machine)
	test "$whole" -ge 11
'


# A server that starts a program with an environment of its own keeping
# LD_PRELOAD but not SPY_OPTIONS (lighttpd's CGI programs): the program is
# traced with the same options (its trace where the others are, not a
# warning on its standard error), and its environment is still the one
# it was given.
cat >"$TEST_DIR/cgienv.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	char var[4096];
	const char *pre = getenv("LD_PRELOAD");
	snprintf(var, sizeof(var), "LD_PRELOAD=%s", pre ? pre : "");
	char *env[] = { "QUERY_STRING=a=1", var, NULL };
	char *args[] = { "/usr/bin/env", NULL };
	pid_t pid = fork();
	if (pid == 0) {
		execve(args[0], args, env);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}
EOF

test_expect 'an environment of its own with LD_PRELOAD but no SPY_OPTIONS: the same options' '
	gcc -O1 -o cgienv "$TEST_DIR/cgienv.c" &&
	mkdir tr cwd && cd cwd &&
	SPY_OPTIONS=out=$PWD/../tr/t.%e.%p.log LD_PRELOAD=$LIBSPY ../cgienv >out 2>err &&
	cat err && ! test -s err &&
	printf "QUERY_STRING=a=1\nLD_PRELOAD=%s\n" "$LIBSPY" | cmp - out &&
	ls ../tr && ! ls spy.*.log && ls ../tr/t.env.*.log &&
	summary_ok ../tr/t.env.*.log
'

# A child forked by a raw clone or clone3 system call (bubblewrap,
# systemd) gets none of libspy's fork handling: it runs untraced, never
# faulting on the parent's trace mappings it lacks.
test_expect 'raw clone and clone3 children run as without libspy, every way they end' '
	gcc -O1 -pthread -o rawfork "$FIXTURES/rawfork.c" &&
	for how in exit _exit abort exec return; do
		same_output "$how" "$PWD/rawfork" $how || return 1
		grep -c "status\|signal" traced.out | grep -qx 2 || return 1
		SPY_OPTIONS=guard=1 same_output "$how, guard mode" "$PWD/rawfork" $how || return 1
		rm -rf plain traced
	done
'

# posix_spawn, system and popen exec from inside the C library, past the
# exec hooks, so the parent's variable is not passed on: the child finds
# the parent's trace among its open files, names it, and never replaces
# it when the pattern has no %p.
cat >"$TEST_DIR/spawners.c" <<'EOF'
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
extern char **environ;
int main(int argc, char **argv)
{
	char *lost = malloc(77);
	lost = NULL;
	/* a fifo open for reading only: another open for reading would
	 * wait for a writer forever */
	mkfifo("fifo", 0600);
	open("fifo", O_RDONLY | O_NONBLOCK);
	fflush(stdout);
	if (!strcmp(argv[1], "system")) {
		system("echo from system");
	} else if (!strcmp(argv[1], "popen")) {
		FILE *f = popen("echo from popen", "r");
		char line[64];
		while (fgets(line, sizeof(line), f))
			fputs(line, stdout);
		pclose(f);
	} else {
		pid_t pid;
		char *av[] = { "sh", "-c", "echo from posix_spawn", NULL };
		posix_spawnp(&pid, "sh", NULL, NULL, av, environ);
		waitpid(pid, NULL, 0);
	}
	return lost != NULL;
}
EOF

test_expect 'system, popen, posix_spawn: the child never replaces its parent'\''s trace, and names it' '
	gcc -O0 -g -o spawners "$TEST_DIR/spawners.c" &&
	for how in system popen posix_spawn; do
		rm -f run*.log* fifo &&
		timeout 20 env SPY_OPTIONS=out=$PWD/run.log LD_PRELOAD=$LIBSPY ./spawners $how >out 2>err || return 1
		grep -qx "from $how" out && ! test -s err || return 1
		summary_json run.log &&
		json_check run.log.json "j[\"process\"][\"exe\"].endswith(\"/spawners\")" || return 1
		child=$(ls run.*.log | grep -vx run.log) && say "$how: $child" &&
		summary_json "$child" &&
		json_check "$child.json" "j[\"process\"][\"cause\"] == \"fork\" and j[\"process\"][\"parent_trace\"] == \"$PWD/run.log\"" || return 1
	done
'

test_done
