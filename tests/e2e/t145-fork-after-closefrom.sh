#!/bin/bash
# t145: a program that closes every descriptor it did not open itself
# (closefrom, close_range: daemons and varnishd do) and then forks: the
# stack unwinder's pipe went with them, and the child's trace got the
# pipe's old number, on which libspy's own writes then failed. The child
# wrote no trace and said so on the program's stderr (varnishd shows its
# compiler's stderr as the compiler's messages).
. "$(dirname "$0")/lib.sh"

cat >"$TEST_DIR/closeall.c" <<'CEOF'
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "range"))
		close_range(3, ~0U, 0);
	else
		closefrom(3);
	pid_t pid = fork();
	if (pid == 0) {
		char *x = malloc(100);
		strcpy(x, "child");
		printf("%s\n", x);
		free(x);
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("parent %d\n", WEXITSTATUS(st));
	return 0;
}
CEOF

test_expect 'closefrom or close_range, then fork: the child writes its trace, nothing on stderr' '
	gcc -O0 -g -o closeall "$TEST_DIR/closeall.c" &&
	for how in closefrom range; do
		rm -rf t && mkdir t &&
		SPY_OPTIONS=out=$PWD/t/c.%p.log LD_PRELOAD=$LIBSPY ./closeall $how >out 2>err &&
		say "$how: $(cat err)" && ! test -s err &&
		test "$(cat out)" = "$(printf "child\\nparent 0")" &&
		test "$(ls t/c.*.log | wc -l)" = 2 &&
		for f in t/c.*.log; do
			summary_json "$f" &&
			json_check "$f.json" "j[\"calls\"].get(\"malloc\", 0) >= 1" || return 1
		done || return 1
	done
'

test_done
