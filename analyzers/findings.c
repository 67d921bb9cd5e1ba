/* findings.c: the findings model and the detector registry. */
#include "findings.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect_crash.h"
#include "detect_heap.h"
#include "detect_io.h"
#include "detect_locks.h"
#include "detect_threads.h"

/* The registry. Each detector lives in its own module and is added here. */
const struct detector detectors[] = {
	{ "double-free, invalid-free, mismatched-free, use-after-free, heap-overflow, leak, allocation-failure, fragmentation", detect_heap },
	{ "thread-storm, stack-overflow, false-sharing, bad-join, thread-leak", detect_threads },
	{ "lock-order-cycle, deadlock, livelock, bad-unlock, bad-destroy", detect_locks },
	{ "unbuffered-io", detect_io },
	{ "crash (and use-after-free, heap-overflow when the fault was in the heap, double-free when glibc aborted in one)", detect_crash },
	{ NULL, NULL },
};

int findings_run(const struct trace_model *m, struct finding_list *out)
{
	for (const struct detector *d = detectors; d->run; d++)
		if (d->run(m, out) < 0)
			return -1;
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct finding *finding_add(struct finding_list *l, const char *kind,
			    enum finding_severity sev, const char *headline,
			    const char *explanation, const char *fix)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 8;
		void *p = realloc(l->v, ncap * sizeof(*l->v));
		if (!p)
			return NULL;
		l->v = p;
		l->cap = ncap;
	}
	struct finding *f = &l->v[l->n];
	*f = (struct finding){
		.kind = dup_or_null(kind), .severity = sev,
		.headline = dup_or_null(headline),
		.explanation = dup_or_null(explanation),
		.fix = dup_or_null(fix),
	};
	if (!f->kind || !f->headline) {
		free(f->kind);
		free(f->headline);
		free(f->explanation);
		free(f->fix);
		return NULL;
	}
	l->n++;
	return f;
}

int finding_add_stack(struct finding *f, const char *label, uint64_t thread,
		      const uint64_t *frames, size_t n)
{
	void *p = realloc(f->stacks, (f->n_stacks + 1) * sizeof(*f->stacks));
	if (!p)
		return -1;
	f->stacks = p;
	struct finding_stack *s = &f->stacks[f->n_stacks];
	*s = (struct finding_stack){ .label = dup_or_null(label),
				     .thread = thread, .n = n };
	s->frames = malloc((n ? n : 1) * sizeof(*frames));
	if (!s->frames || (label && !s->label)) {
		free(s->frames);
		free(s->label);
		return -1;
	}
	if (n)
		memcpy(s->frames, frames, n * sizeof(*frames));
	f->n_stacks++;
	return 0;
}

static int add_detail(struct finding *f, const char *key,
		      enum detail_type type, const char *str, int64_t num)
{
	void *p = realloc(f->details, (f->n_details + 1) * sizeof(*f->details));
	if (!p)
		return -1;
	f->details = p;
	struct finding_detail *d = &f->details[f->n_details];
	*d = (struct finding_detail){ .key = strdup(key), .type = type,
				      .str = dup_or_null(str), .num = num };
	if (!d->key || (str && !d->str)) {
		free(d->key);
		free(d->str);
		return -1;
	}
	f->n_details++;
	return 0;
}

int finding_add_str(struct finding *f, const char *key, const char *val)
{
	return add_detail(f, key, DETAIL_STR, val ? val : "", 0);
}

int finding_add_int(struct finding *f, const char *key, int64_t val)
{
	return add_detail(f, key, DETAIL_INT, NULL, val);
}

int finding_add_hex(struct finding *f, const char *key, uint64_t val)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "0x%" PRIx64, val);
	return finding_add_str(f, key, buf);
}

int finding_add_json(struct finding *f, const char *key, const char *json)
{
	return add_detail(f, key, DETAIL_JSON, json, 0);
}

const char *finding_severity_name(enum finding_severity s)
{
	switch (s) {
	case SEV_ERROR: return "error";
	case SEV_WARNING: return "warning";
	default: return "info";
	}
}

void finding_list_release(struct finding_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct finding *f = &l->v[i];
		free(f->kind);
		free(f->headline);
		free(f->explanation);
		free(f->fix);
		for (size_t j = 0; j < f->n_stacks; j++) {
			free(f->stacks[j].label);
			free(f->stacks[j].frames);
		}
		free(f->stacks);
		for (size_t j = 0; j < f->n_details; j++) {
			free(f->details[j].key);
			free(f->details[j].str);
		}
		free(f->details);
	}
	free(l->v);
	*l = (struct finding_list){ 0 };
}
