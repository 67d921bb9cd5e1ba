#!/bin/bash
# t610: the lesson pages (docs/lessons/*.md) show what the tools print now:
# docs/generate.sh --check reruns every page's commands and compares the
# outputs with the pages, numbers, addresses and times normalised away. The
# check itself must catch a stale page (a control), and every page must
# carry the parts the lessons promise.
. "$(dirname "$0")/lib.sh"

GEN=$TOP/docs/generate.sh
LESSONS=$TOP/docs/lessons

test_expect 'every lesson of DESIGN.md has its page, with outputs and a correction' '
	for p in stack-vs-heap array-decay dangling-pointers recursion virtual-memory false-sharing deadlock syscall-overhead fragmentation scheduling-tax livelock; do
		f=$LESSONS/$p.md &&
		test -s "$f" &&
		grep -q "^## What really happens on Linux today" "$f" &&
		grep -q "^## The demo" "$f" &&
		grep -q "^<!-- run: ./spy " "$f" &&
		grep -q "](.*$p.md)" "$LESSONS/README.md" || { say "page $p"; exit 1; }
	done &&
	grep -q "served by .mmap." "$LESSONS/fragmentation.md" &&
	grep -qi "does not crash" "$LESSONS/dangling-pointers.md"
'

test_expect 'the check catches a stale page (control)' '
	cp "$LESSONS/deadlock.md" stale.md &&
	python3 - stale.md <<-PY &&
	import re, sys
	t = open(sys.argv[1]).read()
	cmd = "<!-- run: ./analyze lock-graph deadlock.log -->\n"
	i = t.index(cmd) + len(cmd)
	j = t.index("<!-- end run -->", i)
	old = "\`\`\`\n$ ./analyze lock-graph deadlock.log\nanalyze: unknown command \x27lock-graph\x27\nusage: analyze COMMAND [--json] TRACE\n[exit status 2]\n\`\`\`\n"
	open(sys.argv[1], "w").write(t[:i] + old + t[j:])
	PY
	rc=0 && "$GEN" --check "$PWD/stale.md" >out || rc=$? &&
	cat out && test $rc -eq 1 &&
	grep -q "stale output of \"./analyze lock-graph deadlock.log\"" out
'

test_expect 'every page is up to date (make docs regenerates them)' '
	"$GEN" --check >out 2>&1 || { cat out; exit 1; }
'

test_done
