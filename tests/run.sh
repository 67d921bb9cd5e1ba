#!/bin/bash
# run.sh: run every unit test (tests/unit/bin/*) and every end-to-end test
# (tests/e2e/t*.sh), each in a fresh temporary directory under a time limit,
# read their TAP and add it up. Usage: tests/run.sh [NAME-PATTERN...]
# The last line is "N passed, N failed"; the status is 1 if any assertion
# failed or any test crashed, timed out, or broke its plan.
set -u

TOP=$(cd "$(dirname "$0")/.." && pwd)
export TOP
LIMIT=${SPY_TEST_TIMEOUT:-300}
# A test sees no libspy settings from the caller's shell.
unset LD_PRELOAD SPY_OPTIONS
export LC_ALL=C.UTF-8 TZ=UTC
# The real programs under test are the system's, not a user's wrappers
# (version-manager shims are shell scripts that run other programs).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

tests=()
for t in "$TOP"/tests/unit/bin/* "$TOP"/tests/e2e/t*.sh; do
	[ -f "$t" ] || continue
	if [ $# -gt 0 ]; then
		hit=
		for pat in "$@"; do
			case $(basename "$t") in *$pat*) hit=1 ;; esac
		done
		[ -n "$hit" ] || continue
	fi
	tests+=("$t")
done

passed=0 failed=0 skipped=0 broken=0
base=$(mktemp -d "${TMPDIR:-/tmp}/libspy-tests.XXXXXX") || exit 1

# Reads one test's TAP on stdin; sets pass, fail, skip, count, plan, and
# prints the failing assertions with their diagnostics.
read_tap() {
	pass=0 fail=0 skip=0 count=0 plan=-1 bail=0
	local line show=0
	while IFS= read -r line; do
		case $line in
		"1.."*)
			plan=${line#1..}
			plan=${plan%% *}
			show=0 ;;
		"not ok"*)
			count=$((count + 1)) show=0
			case $line in
			*"# TODO"*) ;;
			*) fail=$((fail + 1)) show=1
			   echo "    $line" ;;
			esac ;;
		"ok"*)
			count=$((count + 1)) show=0
			case $line in
			*"# SKIP"* | *"# skip"*) skip=$((skip + 1)) ;;
			*) pass=$((pass + 1)) ;;
			esac ;;
		"Bail out!"*)
			bail=1
			echo "    $line" ;;
		"#"*)
			[ $show = 1 ] && echo "    $line" ;;
		*) show=0 ;;
		esac
	done
}

for t in "${tests[@]}"; do
	name=$(basename "$t")
	dir=$base/$name
	mkdir -p "$dir/work"
	if [ "${t%.sh}" != "$t" ]; then
		cmd=(bash "$t")
	else
		cmd=("$t")
	fi
	(cd "$dir/work" && exec timeout -k 10 "$LIMIT" "${cmd[@]}" \
		>"$dir/stdout" 2>"$dir/stderr" </dev/null)
	rc=$?
	details=$(read_tap <"$dir/stdout"; echo "$pass $fail $skip $count $plan $bail" >"$dir/counts")
	read -r pass fail skip count plan bail <"$dir/counts"
	problem=
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		problem="timed out after ${LIMIT}s"
	elif [ $rc -ge 128 ]; then
		problem="died of signal $((rc - 128))"
	elif [ "$bail" = 1 ]; then
		problem="bailed out"
	elif [ "$plan" = -1 ]; then
		problem="printed no TAP plan (exit status $rc)"
	elif [ "$plan" != "$count" ]; then
		problem="planned $plan tests but ran $count"
	elif [ $rc -ne 0 ] && [ "$fail" -eq 0 ]; then
		problem="exited with status $rc but no assertion failed"
	fi
	passed=$((passed + pass))
	failed=$((failed + fail))
	skipped=$((skipped + skip))
	if [ -n "$problem" ]; then
		broken=$((broken + 1))
		failed=$((failed + 1))
	fi
	if [ "$fail" -eq 0 ] && [ -z "$problem" ]; then
		printf 'PASS %s (%d passed%s)\n' "$name" "$pass" \
			"$([ "$skip" -gt 0 ] && echo ", $skip skipped")"
		rm -rf "$dir"
		continue
	fi
	printf 'FAIL %s (%d passed, %d failed%s)\n' "$name" "$pass" "$fail" \
		"${problem:+; $problem}"
	[ -n "$details" ] && printf '%s\n' "$details"
	if [ -s "$dir/stderr" ]; then
		echo "    --- last lines of its stderr ($dir/stderr):"
		tail -n 15 "$dir/stderr" | sed 's/^/    | /'
	fi
done

rmdir "$base" 2>/dev/null
if [ ${#tests[@]} -eq 0 ]; then
	echo "no tests found" >&2
	failed=$((failed + 1))
fi
[ "$skipped" -gt 0 ] && echo "($skipped skipped)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
