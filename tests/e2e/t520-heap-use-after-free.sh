#!/bin/bash
# t520: writes after free in the default mode. Freed blocks are held in a
# quarantine filled with a pattern; a changed byte is a use-after-free
# finding with the block's free and allocation stacks and the bytes
# written, found when the block leaves the quarantine or at exit. The
# middle of a big held block is inaccessible instead: a read or a write
# there is caught at its instruction, and the program goes on.
. "$(dirname "$0")/lib.sh"

line_of() { grep -n -F -- "$2" "$1" | head -n 1 | cut -d: -f1; }
DANG=$TOP/demos/dangling.c
L_MALLOC=$(line_of "$DANG" "malloc(sizeof *p)")
L_FREE=$(line_of "$DANG" "free(p);            /* the caller")
L_UAF_CALL=$(awk "/^static int use_after_free/ {f = 1} f && /remove_player\(p\);/ {print NR; exit}" "$DANG")
L_MAIN_CALL=$(awk "/^int main/ {f = 1} f && /use_after_free\(\)/ {print NR; exit}" "$DANG")

uaf() { echo "[x for x in j[\"findings\"] if x[\"kind\"] == \"use-after-free\"]"; }
top() { echo "[(fr[\"function\"], fr[\"line\"]) for fr in $1[\"frames\"]]"; }

test_expect 'the dangling demo: output unchanged, the write found at exit with both stacks' '
	same_output dangling "$TOP/demos/dangling" &&
	t=$(ls traced/trace.*.log) && report_json $t &&
	json_check $t.json "len($(uaf)) == 1" &&
	json_check $t.json "($(uaf))[0][\"details\"][\"first_offset\"] == 32 and ($(uaf))[0][\"details\"][\"last_offset\"] == 35" &&
	json_check $t.json "($(uaf))[0][\"details\"][\"size\"] == 64" &&
	json_check $t.json "($(uaf))[0][\"details\"][\"bytes_found\"] == \"63 00 00 00\"" &&
	json_check $t.json "(\"remove_player\", $L_FREE) in $(top "($(uaf))[0][\"stacks\"][0]")" &&
	json_check $t.json "(\"new_player\", $L_MALLOC) in $(top "($(uaf))[0][\"stacks\"][1]")"
'

# The demo's compiler inlines remove_player into use_after_free and that
# into main: the free's stack names every level, each at its own line, as
# addr2line -i does (the outer levels were lost, and main's frame read the
# line inside use_after_free).
test_expect 'the dangling demo: a free inlined two levels deep names both levels and main at their own lines' '
	test -n "$L_UAF_CALL" && test -n "$L_MAIN_CALL" &&
	SPY_OPTIONS=out=$PWD/i.log LD_PRELOAD=$LIBSPY "$TOP/demos/dangling" >out &&
	report_json i.log &&
	json_check i.log.json "$(top "($(uaf))[0][\"stacks\"][0]")[:3] == [(\"remove_player\", $L_FREE), (\"use_after_free\", $L_UAF_CALL), (\"main\", $L_MAIN_CALL)]"
'

test_expect 'the fixed demo: no use after free' '
	same_output dangling_fixed "$TOP/demos/dangling_fixed" &&
	t=$(ls traced/trace.*.log) && report_json $t &&
	json_check $t.json "not $(uaf)"
'

test_expect 'quarantine_mb=0 turns the check off (the finding comes from the quarantine)' '
	SPY_OPTIONS=out=$PWD/t.log:quarantine_mb=0 LD_PRELOAD=$LIBSPY "$TOP/demos/dangling" >out &&
	report_json t.log &&
	json_check t.log.json "not $(uaf)"
'

cat >"$TEST_DIR/late.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	char *victim = malloc(4096);
	free(victim);
	victim[100] = 'x';                     /* the bad write */
	victim[101] = 'y';
	/* enough frees to push it out of a 1 MiB quarantine */
	for (int i = 0; i < 2000; i++)
		free(malloc(4096));
	puts("done");
	return 0;
}
CEOF

test_expect 'a write found when the block leaves the quarantine, long before exit' '
	gcc -O0 -g -o late "$TEST_DIR/late.c" &&
	SPY_OPTIONS=out=$PWD/t.log:quarantine_mb=1 LD_PRELOAD=$LIBSPY ./late >out &&
	grep -x done out &&
	report_json t.log &&
	json_check t.log.json "len($(uaf)) == 1 and ($(uaf))[0][\"details\"][\"bytes_changed\"] == 2" &&
	json_check t.log.json "($(uaf))[0][\"details\"][\"bytes_found\"] == \"78 79\"" &&
	"$ANALYZE" dump t.log >dump &&
	grep -n "heap-uaf" dump >uafline && grep -n " exit " dump >exitline &&
	test $(cut -d: -f1 uafline) -lt $(cut -d: -f1 exitline)
'

cat >"$TEST_DIR/middle.c" <<'CEOF'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

static char *stale;

static void *reader(void *arg)
{
	(void)arg;
	printf("read %d\n", stale[20000]);    /* MID: read in a thread */
	return NULL;
}

int main(int argc, char **argv)
{
	char *buf = malloc(64 * 1024);         /* MID: the block */
	memset(buf, 'x', 64 * 1024);
	free(buf);                             /* MID: freed */
	char mode = argc > 1 ? argv[1][0] : '-';
	if (mode == 'w')
		buf[30000] = 'A';              /* MID: write */
	else if (mode == 'r')
		printf("read %d\n", buf[30000]); /* MID: read */
	else if (mode == 's') {
		int fd[2];
		char back[100];
		if (pipe(fd) != 0)
			return 1;
		long n = write(fd[1], buf + 20000, 100); /* MID: syscall reads */
		long m = read(fd[0], back, sizeof back);
		printf("sent %ld, got %ld: %c\n", n, m, back[99]);
	} else if (mode == 'R') {
		int z = open("/dev/zero", O_RDONLY);
		long n = read(z, buf + 30000, 50);     /* MID: syscall writes */
		printf("read %ld\n", n);
	} else if (mode == 'v') {
		int fd[2];
		char head[10] = "head:", back[120];
		struct iovec v[2] = { { head, 5 }, { buf + 25000, 100 } };
		if (pipe(fd) != 0)
			return 1;
		long n = writev(fd[1], v, 2);          /* MID: vector reads */
		long m = read(fd[0], back, sizeof back);
		printf("sent %ld, got %ld: %c\n", n, m, back[104]);
	} else if (mode == 'V') {
		int z = open("/dev/zero", O_RDONLY);
		struct iovec v[2] = { { buf + 35000, 50 }, { buf + 36000, 8 } };
		long n = readv(z, v, 2);               /* MID: vector writes */
		printf("read %ld\n", n);
	} else if (mode == 't') {
		pthread_t t;
		stale = buf;
		pthread_create(&t, NULL, reader, NULL);
		pthread_join(t, NULL);
	}
	printf("still running\n");
	return 3;
}
CEOF
L_MID=$(line_of "$TEST_DIR/middle.c" "MID: the block")
L_MIDFREE=$(line_of "$TEST_DIR/middle.c" "MID: freed")

# mid_check MODE LINE ACCESS: the middle demo in MODE, output and status
# as without libspy, and one use-after-free of ACCESS at LINE with the
# block's free and allocation stacks.
mid_check() {
	same_output "middle $1" "$PWD/middle" "$1" &&
	t=$(ls traced/trace.*.log) && report_json $t &&
	json_check $t.json "[(x[\"details\"][\"access\"], x[\"details\"][\"offset\"], x[\"details\"][\"mode\"]) for x in $(uaf)] == [(\"$3\", $4, \"quarantine\")]" &&
	json_check $t.json "($(top "($(uaf))[0][\"stacks\"][0]"))[0][1] == $2" &&
	json_check $t.json "(\"main\", $L_MIDFREE) in $(top "($(uaf))[0][\"stacks\"][1]")" &&
	json_check $t.json "(\"main\", $L_MID) in $(top "($(uaf))[0][\"stacks\"][2]")"
}

test_expect 'the middle of a big freed block: a write caught at its line, the program goes on' '
	gcc -O0 -g -pthread -o middle "$TEST_DIR/middle.c" &&
	mid_check w $(line_of "$TEST_DIR/middle.c" "MID: write") write 30000
'

test_expect 'the middle of a big freed block: a read caught at its line, the value unchanged' '
	gcc -O0 -g -pthread -o middle "$TEST_DIR/middle.c" &&
	mid_check r $(line_of "$TEST_DIR/middle.c" "MID: read */") read 30000
'

test_expect 'the middle of a big freed block: a read from another thread' '
	gcc -O0 -g -pthread -o middle "$TEST_DIR/middle.c" &&
	mid_check t $(line_of "$TEST_DIR/middle.c" "MID: read in a thread") read 20000
'

# by_call LINE ACCESS OFFSET: as mid_check, for a system call's buffer
test_expect 'a freed block given to write(): recorded at the call, the call made again, output unchanged' '
	gcc -O0 -g -pthread -o middle "$TEST_DIR/middle.c" &&
	mid_check s $(line_of "$TEST_DIR/middle.c" "MID: syscall reads") read 20000 &&
	grep -x "sent 100, got 100: x" traced.out &&
	json_check $t.json "($(uaf))[0][\"details\"][\"by\"] == \"system call\""
'

test_expect 'a freed block given to read(): recorded as a write at the call, the call made again' '
	gcc -O0 -g -pthread -o middle "$TEST_DIR/middle.c" &&
	mid_check R $(line_of "$TEST_DIR/middle.c" "MID: syscall writes") write 30000 &&
	grep -x "read 50" traced.out &&
	json_check $t.json "($(uaf))[0][\"details\"][\"by\"] == \"system call\""
'

test_expect 'the same through writev() and readv(): each buffer of the vector looked at' '
	gcc -O0 -g -pthread -o middle "$TEST_DIR/middle.c" &&
	mid_check v $(line_of "$TEST_DIR/middle.c" "MID: vector reads") read 25000 &&
	grep -x "sent 105, got 105: x" traced.out &&
	rm -rf plain traced &&
	mid_check V $(line_of "$TEST_DIR/middle.c" "MID: vector writes") write 35000 &&
	grep -x "read 58" traced.out
'

test_expect 'the middle of a big freed block: none without a bad access; with quarantine_protect=0 a read sees the fill, unreported' '
	gcc -O0 -g -pthread -o middle "$TEST_DIR/middle.c" &&
	same_output "middle clean" "$PWD/middle" - &&
	t=$(ls traced/trace.*.log) && report_json $t && json_check $t.json "not $(uaf)" &&
	rc=0 && SPY_OPTIONS=out=$PWD/u.log:quarantine_protect=0 LD_PRELOAD=$LIBSPY ./middle r >u.out || rc=$? &&
	test $rc = 3 && grep -x "read -3" u.out &&
	report_json u.log && json_check u.log.json "not $(uaf)"
'

cat >"$TEST_DIR/sizes.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One freed block of each size, and one byte written into it after the
 * free at the offset given (argument "w"); "-" writes nothing. */
static const size_t size[] = { 24, 200, 1000, 3000, 8000, 15000, 20000, 65536 };
static const size_t at[] = { 12, 100, 500, 1500, 4000, 7500, 300, 40000 };

int main(int argc, char **argv)
{
	int write = argc > 1 && argv[1][0] == 'w';
	char *p[8];
	for (int i = 0; i < 8; i++) {
		p[i] = malloc(size[i]);
		memset(p[i], 'a', size[i]);
	}
	for (int i = 0; i < 8; i++)
		free(p[i]);
	if (write)
		for (int i = 0; i < 8; i++)
			p[i][at[i]] = 'W';
	puts("done");
	return 0;
}
CEOF

# (size, offset) of every use-after-free found, in size order
found() { echo "sorted((x[\"details\"][\"size\"], x[\"details\"].get(\"first_offset\", x[\"details\"].get(\"offset\"))) for x in $(uaf))"; }

test_expect 'a write anywhere in a freed block of any size is found by default' '
	gcc -O0 -g -o sizes "$TEST_DIR/sizes.c" &&
	same_output "sizes w" "$PWD/sizes" w &&
	t=$(ls traced/trace.*.log) && report_json $t &&
	json_check $t.json "$(found) == [(24, 12), (200, 100), (1000, 500), (3000, 1500), (8000, 4000), (15000, 7500), (20000, 300), (65536, 40000)]"
'

test_expect 'the same blocks freed and left alone: nothing found' '
	gcc -O0 -g -o sizes "$TEST_DIR/sizes.c" &&
	same_output "sizes clean" "$PWD/sizes" - &&
	t=$(ls traced/trace.*.log) && report_json $t && json_check $t.json "not $(uaf)"
'

test_expect 'quarantine_fill=256 checks only the ends of blocks too small for protected pages: their middles go unseen' '
	gcc -O0 -g -o sizes "$TEST_DIR/sizes.c" &&
	SPY_OPTIONS=quarantine_fill=256 same_output "sizes capped" "$PWD/sizes" w &&
	t=$(ls traced/trace.*.log) && report_json $t &&
	json_check $t.json "$(found) == [(24, 12), (200, 100), (20000, 300), (65536, 40000)]"
'

cat >"$TEST_DIR/sweep.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>

/* For each size (each glibc's usable size of itself), one freed block
 * per byte of it, written after the free at that byte alone (without
 * libspy, glibc's own links in the freed blocks are written over). */
static const size_t size[] = { 24, 40, 56, 72, 120, 248, 264, 280, 504, 520, 1032 };

int main(void)
{
	for (size_t s = 0; s < sizeof size / sizeof *size; s++)
		for (size_t at = 0; at < size[s]; at++) {
			char *p = malloc(size[s]);
			free(p);
			p[at] = 'W';
		}
	puts("done");
	return 0;
}
CEOF

# The check of a held block reads it in steps of several sizes, the last
# of them overlapping the one before: a byte at any offset, first or
# last or between steps, is found alone.
test_expect 'a write at every offset of blocks of many sizes: each found, at its offset' '
	gcc -O0 -g -o sweep "$TEST_DIR/sweep.c" &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./sweep >out &&
	grep -x done out && report_json t.log &&
	json_check t.log.json "sorted((x[\"details\"][\"size\"], x[\"details\"][\"first_offset\"], x[\"details\"][\"last_offset\"], x[\"details\"][\"bytes_found\"]) for x in $(uaf)) == [(s, o, o, \"57\") for s in (24, 40, 56, 72, 120, 248, 264, 280, 504, 520, 1032) for o in range(s)]"
'

test_done
