#!/bin/sh
# demo.sh: `make demo`: run one lesson's demo under libspy through spy and
# say what was shown and where to go next.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)

demo=$TOP/demos/stack_heap
if [ ! -x "$demo" ]; then
	demo=
	for c in "$TOP"/demos/*.c; do
		[ -x "${c%.c}" ] && { demo=${c%.c}; break; }
	done
fi
if [ -z "$demo" ]; then
	echo "demo: no demo is built yet (demos/*.c; try 'make')" >&2
	exit 1
fi

# The trace goes to a scratch directory, not into the source tree.
dir=$(mktemp -d "${TMPDIR:-/tmp}/libspy-demo.XXXXXX") || exit 1
name=$(basename "$demo")
echo "demo: running '$TOP/spy demos/$name' (the program's output, then libspy's report):"
echo
rc=0
(cd "$dir" && "$TOP/spy" -o "$dir/spy.$name.%p.log" "$demo") || rc=$?
trace=$(ls -t "$dir"/spy."$name".*.log 2>/dev/null | head -n 1)
echo
echo "demo: above, '$name' ran unchanged (exit status $rc) while libspy.so recorded every malloc and free with its call stack; the report is the analyzer's reading of that trace."
if [ -n "$trace" ]; then
	echo "demo: next, read the raw events with '$TOP/analyze dump $trace', or try '$TOP/spy $TOP/demos/dangling' and the other demos in demos/."
else
	echo "demo: no trace was written (see the messages above); next, try '$TOP/spy $TOP/demos/dangling' and the other demos in demos/."
fi
exit 0
