#!/bin/bash
# t620: every text view of `analyze` fits 80 columns (counted in characters,
# not bytes) on traces of every demo, broken and fixed, and of real programs
# (python3, git, sqlite3, a C++ program); plain output carries no colour;
# colour appears on a terminal only, and never with NO_COLOR; every finding
# of `analyze report` prints in the one shape (headline line, fix); a
# count of one takes the singular; bad usage (two output formats among
# them) is one line and status 2.
. "$(dirname "$0")/lib.sh"

# The text views checked. A view with a text mode is added here.
VIEWS="report summary dump syscalls lock-graph locks deadlock livelock
threads sched sharing leaks heap map fragmentation"

TRACES=$TEST_DIR/traces
DEMOS=$TOP/demos

# trace NAME CMD...: runs CMD traced, its traces in $TRACES/NAME.PID.log
# (one per process); whatever its status, it must leave a trace.
trace() {
	local name=$1
	shift
	SPY_OPTIONS=${SPY_OPTIONS:+$SPY_OPTIONS:}out=$TRACES/$name.%p.log \
		timeout 120 env LD_PRELOAD="$LIBSPY" "$@" >/dev/null 2>&1 </dev/null
	ls "$TRACES/$name".*.log >/dev/null 2>&1 ||
		{ say "no trace from $name: $*"; return 1; }
}

# wide_lines VIEW FILE...: prints every line of the files (outputs of VIEW,
# named TRACE.VIEW.out) wider than 80 characters or holding an escape
# sequence, as "VIEW TRACE:LINE: (N columns) TEXT"; fails if there is one.
wide_lines() {
	python3 - "$@" <<'PY'
import os, sys
view, bad = sys.argv[1], 0
for path in sys.argv[2:]:
    trace = os.path.basename(path)[:-len('.%s.out' % view)]
    text = open(path, 'rb').read().decode('utf-8', 'replace')
    for no, line in enumerate(text.split('\n'), 1):
        if len(line) > 80 or '\033' in line:
            bad += 1
            what = 'escape sequence' if '\033' in line else '%d columns' % len(line)
            print('%s %s:%d: (%s) %s' % (view, trace, no, what, line))
sys.exit(1 if bad else 0)
PY
}

test_expect 'the width check catches a line of 81 characters and an escape' '
	printf "%080d\n" 0 >ok.v.out && wide_lines v ok.v.out &&
	printf "%079d\xc3\xa9\xc3\xa9\n" 0 >wide.v.out &&
	! wide_lines v wide.v.out &&
	printf "\033[1mbold\n" >esc.v.out && ! wide_lines v esc.v.out
'

test_expect 'analyze --help and spy --help fit 80 columns' '
	"$ANALYZE" --help >analyze.help.out && "$SPY" --help >spy.help.out &&
	grep -q "fragmentation" analyze.help.out &&
	grep -q "quarantine_fill=" spy.help.out &&
	wide_lines help analyze.help.out spy.help.out
'

test_expect 'traces of every demo, broken and fixed, and of real programs' '
	mkdir -p "$TRACES" &&
	for src in "$DEMOS"/*.c; do
		d=$(basename "$src" .c)
		case $d in
		false_sharing*) trace "$d" "$DEMOS/$d" 2000000 ;;
		syscall_overhead) trace "$d" "$DEMOS/$d" all 20000 ;;
		*) trace "$d" "$DEMOS/$d" ;;
		esac || exit 1
	done &&
	trace deadlock_hang "$DEMOS/deadlock" --hang &&
	trace dangling_double "$DEMOS/dangling" --double-free &&
	trace dangling_invalid "$DEMOS/dangling" --invalid-free &&
	SPY_OPTIONS=sample_hz=1000 trace false_sharing_sampled \
		"$DEMOS/false_sharing" 20000000 &&
	trace syscall_py python3 "$DEMOS/syscall_overhead.py" all 20000 &&
	trace python3 python3 -c "import json, threading
t = threading.Thread(target=lambda: print(json.dumps({\"a\": [1, 2]})))
t.start(); t.join()" &&
	git init -q repo &&
	git -C repo -c user.name=t -c user.email=t@t commit -q --allow-empty -m one &&
	trace git git -C repo log --stat -1 &&
	if command -v sqlite3 >/dev/null; then
		trace sqlite3 sqlite3 :memory: "create table t(a); insert into t values (1); select * from t;"
	fi &&
	if command -v g++ >/dev/null; then
		g++ -O0 -g -pthread -o cxx "$FIXTURES/locks_cxx.cc" &&
		trace cxx ./cxx
	fi &&
	say "$(ls "$TRACES" | wc -l) traces"
'

for view in $VIEWS; do
	test_expect "analyze $view fits 80 columns on every trace" '
		n=0 &&
		for t in "$TRACES"/*.log; do
			rc=0
			"$ANALYZE" $view "$t" >"$t.$view.out" 2>"$t.$view.err" || rc=$?
			[ "$rc" -le 1 ] || { say "$view $t: exit $rc"; cat "$t.$view.err"; exit 1; }
			[ -s "$t.$view.out" ] || { say "$view $t: no output"; exit 1; }
			n=$((n + 1))
		done &&
		say "$n traces" && test "$n" -gt 20 &&
		wide_lines $view "$TRACES"/*.log.$view.out
	'
done

# singular_ok FILE|DIR...: no count of one in the files (a directory's
# *.out) is followed by a plural noun ("1 blocks", "1 live blocks", "1
# major page faults"; a count that ends a line wrapped to fit, 60 columns
# or more, meets its noun on the next); prints each.
singular_ok() {
	python3 - "$@" <<'PY'
import glob, os, re, sys
NOUNS = ('blocks|bytes|chunks|threads|calls|sites|holes|regions|extents|'
         'pieces|samples|records|frees|reallocs|ids|locks|edges|cycles|'
         'times|snapshots|acquisitions|findings|switches|faults|CPUs|heaps|'
         'stacks|writes|reads|waits|tries|arguments|lines|frames|definitions')
pat = re.compile(r'(?<![\w.,+-])1 (?:[a-z]+ ){0,2}(?:%s)\b' % NOUNS)
bad = 0
paths = []
for arg in sys.argv[1:]:
    paths += sorted(glob.glob(os.path.join(arg, '*.out'))) \
        if os.path.isdir(arg) else [arg]
for path in paths:
    lines = open(path, errors='replace').read().split('\n')
    for no, line in enumerate(lines):
        if len(line) >= 60 and re.search(r'\d$', line) and \
           no + 1 < len(lines) and lines[no + 1][:1].isspace():
            line += ' ' + lines[no + 1].strip()
        for m in pat.finditer(line):
            bad += 1
            print('%s:%d: %s' % (path, no + 1, m.group(0)))
sys.exit(1 if bad else 0)
PY
}

test_expect 'the singular check catches "1 blocks" and lets "1 block" pass' '
	printf "peak 4096 bytes live in 1 blocks\n" >p.out && ! singular_ok p.out &&
	printf "%060d, 1\n           major page faults\n" 0 >w.out &&
	! singular_ok w.out &&
	printf "1 block, 1 byte; 11 blocks; 0.1 blocks; estimated from 1 of 2 threads\n" >s.out &&
	printf "  holes of 2048..4095 bytes: 1\n  holes of 4096..8191 bytes: 2\n" >>s.out &&
	singular_ok s.out
'

test_expect 'a count of one takes the singular in every view' '
	singular_ok "$TRACES"
'

# usage_error ARGS...: `analyze ARGS...` is bad usage: status 2, nothing on
# stdout, and one line on stderr, "analyze: ... (see analyze --help)".
usage_error() {
	local rc=0
	"$ANALYZE" "$@" >usage.out 2>usage.err || rc=$?
	say "analyze $*: status $rc: $(cat usage.err)"
	test "$rc" = 2 && one_line usage.err && ! test -s usage.out &&
	grep -q "^analyze: .* (see analyze --help)$" usage.err
}

test_expect 'bad usage of every command: one line, status 2' '
	t=$(ls "$TRACES"/dangling.*.log | head -n 1) &&
	usage_error && usage_error --json && usage_error --bogus &&
	usage_error bogus "$t" && usage_error -o &&
	for c in $VIEWS where export; do
		usage_error $c && usage_error $c --bogus "$t" &&
		usage_error $c "$t" 0x10 extra || return 1
	done &&
	usage_error heap "$t" "$t" && usage_error where "$t" &&
	usage_error where "$t" 0xzz && usage_error export "$t" &&
	usage_error heap --compare "$t" "$t" &&
	usage_error fragmentation --compare "$t" &&
	usage_error report "$t" -o &&
	usage_error "$(printf "bad\ncommand")" "$t" &&
	grep -q "bad?command" usage.err
'

test_expect 'every command takes one output format a run, and only one it writes' '
	t=$(ls "$TRACES"/deadlock.*.log | head -n 1) &&
	for c in $VIEWS export; do
		for pair in "--json --dot" "--dot --svg" "--svg --html" \
			"--html --chrome" "--chrome --json"; do
			usage_error $c $pair "$t" || return 1
		done
	done &&
	for f in --dot --svg --html --chrome; do
		for c in $VIEWS; do
			case "$c $f" in
			"lock-graph --dot" | "lock-graph --svg" | \
			"fragmentation --svg" | "report --html") continue ;;
			esac
			usage_error $c $f "$t" || return 1
		done
	done &&
	usage_error export --json "$t" && usage_error where --dot "$t" 0x10 &&
	usage_error heap -o x "$t" && usage_error report -o x "$t" &&
	usage_error report --json -o x "$t" &&
	usage_error report --html -o x -o y "$t" &&
	usage_error fragmentation --compare --svg "$t" "$t" &&
	{ "$ANALYZE" heap --json --json "$t" >h.json; test $? -le 1; } &&
	json_check h.json "j[\"calls\"] > 0"
'

test_expect 'every finding of the report: headline after its kind, then a fix' '
	for t in "$TRACES"/*.log; do
		{ "$ANALYZE" report --json "$t" >"$t.rj" || [ $? -eq 1 ]; } &&
		want=$(python3 -c "import json, sys
f = json.load(open(sys.argv[1]))[\"findings\"]
print(len(f), sum(1 for x in f if x[\"fix\"]))" "$t.rj") &&
		heads=$(grep -Ec "^(error|warning|info) \[[a-z-]+\] [^ ]" "$t.report.out" || :) &&
		fixes=$(grep -c "^  fix:$" "$t.report.out" || :) &&
		say "$t: $want findings and fixes, text $heads $fixes" &&
		test "$want" = "$heads $fixes" || exit 1
	done
'

# on_tty VAR=VALUE... -- CMD...: CMD's output when its stdout is a terminal.
on_tty() {
	python3 - "$@" <<'PY'
import os, pty, sys
args = sys.argv[1:]
cut = args.index('--')
env = dict(os.environ)
env.pop('NO_COLOR', None)
for kv in args[:cut]:
    k, v = kv.split('=', 1)
    env[k] = v
pid, fd = pty.fork()
if pid == 0:
    os.execvpe(args[cut + 1], args[cut + 1:], env)
out = b''
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
PY
}

test_expect 'colour on a terminal only, and never with NO_COLOR' '
	t=$(ls "$TRACES"/dangling.*.log | head -n 1) &&
	on_tty -- "$ANALYZE" report "$t" >tty.out &&
	grep -q "$(printf "\033")\[" tty.out &&
	on_tty NO_COLOR=1 -- "$ANALYZE" report "$t" >nocolor.out &&
	grep -q "use-after-free" nocolor.out &&
	! grep -q "$(printf "\033")" nocolor.out &&
	{ "$ANALYZE" report "$t" >file.out; test $? -eq 1; } &&
	! grep -q "$(printf "\033")" file.out
'

test_done
