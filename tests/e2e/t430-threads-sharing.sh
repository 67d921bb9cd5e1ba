#!/bin/bash
# t430: with sample_hz=, the false_sharing demo is flagged (the two fields,
# the two threads, the writing lines) and its padded variant is not; one
# counter written by two threads is true sharing, not false; sampling
# changes neither the output nor the system calls' results of a program.
. "$(dirname "$0")/lib.sh"

DEMOS=$TOP/demos
export SPY_OPTIONS=sample_hz=1000

cat >shared.c <<'EOF'
#include <pthread.h>
#include <stdio.h>
static _Atomic unsigned long counter;
static void *bump(void *a)
{
	for (unsigned long i = 0; i < 30000000; i++)
		counter++;
	return a;
}
int main(void)
{
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, bump, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("%lu\n", (unsigned long)counter);
	return 0;
}
EOF
cat >sleeps.c <<'EOF'
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>
/* Busy, then sleep, 2000 times: a sampling signal must not make a
 * sleep or a poll return early with EINTR. */
int main(void)
{
	int eintr = 0;
	volatile unsigned long x = 0;
	for (int i = 0; i < 2000; i++) {
		for (int k = 0; k < 200000; k++)
			x += (unsigned long)k;
		struct timespec ts = { 0, 10000 };
		if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
			eintr++;
		if (poll(NULL, 0, 0) < 0 && errno == EINTR)
			eintr++;
	}
	printf("EINTR %d\n", eintr);
	return 0;
}
EOF
gcc -std=gnu11 -O1 -g -pthread -o "$TEST_DIR/shared" shared.c &&
gcc -std=gnu11 -O1 -g -o "$TEST_DIR/sleeps" sleeps.c ||
	{ echo "Bail out! cannot build the test programs"; exit 1; }

test_expect 'false_sharing: flagged with both fields, both threads and their lines' '
	SPY_OPTIONS=$SPY_OPTIONS:out=fs.log traced "$DEMOS/false_sharing" >out &&
	head -n 1 out | grep -x "hits = 50000000, misses = 50000000" &&
	report_json fs.log fs.log.r.json &&
	json_check fs.log.r.json "[f[\"kind\"] for f in j[\"findings\"]].count(\"false-sharing\") == 1" &&
	json_check fs.log.r.json "(lambda f: sorted(w[\"variable\"] for w in f[\"details\"][\"writers\"]) == [\"stats.hits\", \"stats.misses\"] and len(set(w[\"thread\"] for w in f[\"details\"][\"writers\"])) == 2)([f for f in j[\"findings\"] if f[\"kind\"] == \"false-sharing\"][0])" &&
	json_check fs.log.r.json "sorted(s[\"frames\"][0][\"function\"] for f in j[\"findings\"] if f[\"kind\"] == \"false-sharing\" for s in f[\"stacks\"]) == [\"count_hits\", \"count_misses\"]" &&
	json_check fs.log.r.json "all(s[\"frames\"][0][\"file\"].endswith(\"false_sharing.c\") for f in j[\"findings\"] if f[\"kind\"] == \"false-sharing\" for s in f[\"stacks\"])"
'

test_expect 'false_sharing_fixed (padded): no false-sharing' '
	SPY_OPTIONS=$SPY_OPTIONS:out=fx.log traced "$DEMOS/false_sharing_fixed" >out &&
	report_json fx.log fx.log.r.json &&
	json_check fx.log.r.json "\"false-sharing\" not in [f[\"kind\"] for f in j[\"findings\"]]" &&
	"$ANALYZE" sharing --json fx.log >sh.json &&
	json_check sh.json "j[\"samples\"] > 5 and not [l for l in j[\"lines\"] if l[\"verdict\"] == \"false sharing\"]"
'

test_expect 'one counter written by two threads is true sharing, not false' '
	SPY_OPTIONS=$SPY_OPTIONS:out=ts.log traced "$TEST_DIR/shared" >out &&
	grep -x 60000000 out &&
	report_json ts.log ts.log.r.json &&
	json_check ts.log.r.json "\"false-sharing\" not in [f[\"kind\"] for f in j[\"findings\"]]" &&
	"$ANALYZE" sharing --json ts.log >sh.json &&
	json_check sh.json "[l[\"verdict\"] for l in j[\"lines\"]] == [\"true sharing\"]" &&
	json_check sh.json "[w[\"variable\"] for l in j[\"lines\"] for w in l[\"writers\"]] == [\"counter\", \"counter\"]"
'

test_expect 'without sample_hz nothing is sampled and nothing flagged, and the report says false sharing went unchecked' '
	SPY_OPTIONS=out=ns.log traced "$DEMOS/false_sharing" >/dev/null &&
	report_json ns.log ns.log.r.json &&
	json_check ns.log.r.json "\"false-sharing\" not in [f[\"kind\"] for f in j[\"findings\"]]" &&
	json_check ns.log.r.json "j[\"not_checked\"] == [\"false-sharing\"]" &&
	"$ANALYZE" report ns.log >rep.txt; grep -q "false sharing was not checked" rep.txt &&
	"$ANALYZE" sharing ns.log >sh.txt && grep "no samples" sh.txt
'

test_expect 'with samples, or with one thread busy, nothing is said to be unchecked' '
	SPY_OPTIONS=$SPY_OPTIONS:out=ws.log traced "$DEMOS/false_sharing_fixed" >/dev/null &&
	report_json ws.log ws.log.r.json &&
	json_check ws.log.r.json "j[\"not_checked\"] == []" &&
	SPY_OPTIONS=out=one.log traced "$TEST_DIR/sleeps" >/dev/null &&
	report_json one.log one.log.r.json &&
	json_check one.log.r.json "j[\"not_checked\"] == []" &&
	"$ANALYZE" report one.log >rep.txt; ! grep -q "not checked" rep.txt
'

test_expect 'sampling makes no sleep or poll fail with EINTR' '
	"$TEST_DIR/sleeps" >plain.out &&
	SPY_OPTIONS=$SPY_OPTIONS:out=sl.log traced "$TEST_DIR/sleeps" >traced.out &&
	grep -x "EINTR 0" plain.out && grep -x "EINTR 0" traced.out &&
	"$ANALYZE" sharing --json sl.log >sh.json &&
	json_check sh.json "j[\"samples\"] > 0"
'

test_done
