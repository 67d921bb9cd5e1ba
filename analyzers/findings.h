/* findings.h: the one shape every detector reports in, and the registry of
 * detectors. A detector reads the model and appends findings; renderers
 * (findings_text.c, findings_json.c) print the same findings as text or
 * JSON. Strings handed to the finding_* setters are copied.
 */
#ifndef SPY_FINDINGS_H
#define SPY_FINDINGS_H

#include <stddef.h>
#include <stdint.h>

#include "trace_reader.h"

enum finding_severity { SEV_ERROR, SEV_WARNING, SEV_INFO };

/* A call stack shown with a finding, innermost frame first. */
struct finding_stack {
	char *label;            /* e.g. "allocated here" */
	uint64_t thread;        /* tid, 0 when not tied to one */
	uint64_t *frames;       /* recorded return addresses */
	size_t n;
};

enum detail_type { DETAIL_STR, DETAIL_INT, DETAIL_JSON };

/* One key/value pair of a finding's details; DETAIL_JSON holds a small
 * JSON text (an object or array the detector wrote itself). */
struct finding_detail {
	char *key;
	enum detail_type type;
	char *str;              /* DETAIL_STR and DETAIL_JSON */
	int64_t num;            /* DETAIL_INT */
};

struct finding {
	char *kind;             /* stable name: "leak", "double-free", ... */
	enum finding_severity severity;
	char *headline;         /* one line */
	char *explanation;      /* plain words, may be several sentences */
	char *fix;              /* what the lesson teaches to do instead */
	struct finding_stack *stacks;
	size_t n_stacks;
	struct finding_detail *details;
	size_t n_details;
};

struct finding_list {
	struct finding *v;
	size_t n, cap;
};

/* A detector: reads m, appends to out. Returns 0, or -1 when memory ran
 * out. */
typedef int (*detector_fn)(const struct trace_model *m,
			   struct finding_list *out);

struct detector {
	const char *name;       /* the kind(s) it reports */
	detector_fn run;
};

/* Every detector, in report order; terminated by { NULL, NULL }. */
extern const struct detector detectors[];

/* Runs every detector over m into out (which starts empty). Returns 0 or
 * -1 when memory ran out. */
int findings_run(const struct trace_model *m, struct finding_list *out);

/* Appends a finding with the given texts; returns it, or NULL when memory
 * ran out. The pointer is valid until the next finding_add. */
struct finding *finding_add(struct finding_list *l, const char *kind,
			    enum finding_severity sev, const char *headline,
			    const char *explanation, const char *fix);

/* Adds a stack (frames copied) to f. Returns 0 or -1. */
int finding_add_stack(struct finding *f, const char *label, uint64_t thread,
		      const uint64_t *frames, size_t n);

int finding_add_str(struct finding *f, const char *key, const char *val);
int finding_add_int(struct finding *f, const char *key, int64_t val);
/* An address, as the string "0x..." */
int finding_add_hex(struct finding *f, const char *key, uint64_t val);
int finding_add_json(struct finding *f, const char *key, const char *json);

const char *finding_severity_name(enum finding_severity s);

/* Frees every finding; the list is empty and reusable afterwards. */
void finding_list_release(struct finding_list *l);

#endif
