#!/bin/bash
# t587: a program exec'd by a traced one finds its environment as the
# kernel laid it out: its strings one run right after argv's, with
# nothing of libspy's in between. nginx copies that run away to make room
# for its process title and points environ at the copy; with a variable
# of libspy's in front (taken out as the program starts), the run was
# cut, nothing was copied, and the copy read as a leak.
. "$(dirname "$0")/lib.sh"

cat >"$TEST_DIR/title.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv)
{
	size_t size = 0, n = 0, moved = 0;
	for (size_t i = 0; environ[i]; i++, n++)
		size += strlen(environ[i]) + 1;
	char *p = malloc(size);            /* TITLE: the copy */
	char *last = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
	for (size_t i = 0; environ[i]; i++) {
		if (environ[i] != last)
			continue;
		size_t len = strlen(environ[i]) + 1;
		last = environ[i] + len;
		memcpy(p, environ[i], len);
		if (argc < 2 || strcmp(argv[1], "forget"))
			environ[i] = p;
		p += len;
		moved++;
	}
	printf("%s\n", moved == n ? "one run" : "cut");
	return 0;
}
CEOF
L_COPY=$(grep -n -F "TITLE: the copy" "$TEST_DIR/title.c" | cut -d: -f1)

lost_lines() {
	local rc=0
	"$ANALYZE" leaks --json "$1" >"$1.leaks.json" || rc=$?
	test "$rc" -le 1 &&
	python3 - "$1.leaks.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(" ".join(str(g["frames"][0]["line"]) for g in j["groups"]
      if g["class"] == "definitely lost" and g["frames"]
      and g["frames"][0]["function"] == "main"))
PY
}

test_expect 'exec'\''d by a traced shell: the environment one run after argv, its copy not lost; a copy left unused is' '
	gcc -O0 -g -o title "$TEST_DIR/title.c" &&
	test "$(sh -c "./title")" = "one run" &&
	out=$(SPY_OPTIONS=out=$PWD/t.%e.%p.log LD_PRELOAD=$LIBSPY sh -c "./title; true") &&
	say "$out" && test "$out" = "one run" &&
	t=$(ls t.title.*.log) && test "$(lost_lines "$t")" = "" &&
	rm -f t.*.log &&
	out=$(SPY_OPTIONS=out=$PWD/t.%e.%p.log LD_PRELOAD=$LIBSPY sh -c "./title forget; true") &&
	test "$out" = "one run" &&
	t=$(ls t.title.*.log) && test "$(lost_lines "$t")" = "$L_COPY"
'

test_done
