/* spy_options.c: parse SPY_OPTIONS=name=value:name=value at start-up.
 * Runs during initialisation, possibly inside the first hook: no allocation.
 */
#include "spy_options.h"

#include "spy_sys.h"

struct spy_options spy_opt;

enum kind { KIND_BOOL, KIND_UINT, KIND_STR };

struct option_def {
	const char *name;
	enum kind kind;
	const char *def;
	void *field;
};

static const struct option_def defs[] = {
#define SPY_OPTION(name, kind, def, help) {#name, KIND_##kind, def, &spy_opt.name},
	SPY_OPTIONS_LIST(SPY_OPTION)
#undef SPY_OPTION
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

/* Limits that keep a value usable; outside them the value is rejected. */
static int in_range(const char *name, unsigned long v)
{
	if (spy_streq(name, "stack_depth"))
		return v >= 1 && v <= 256;
	if (spy_streq(name, "quarantine_protect"))
		return v <= (1ul << 20);
	return 1;
}

/* Applies value (len bytes) to def; 0 on success, -1 if malformed. */
static int apply(const struct option_def *def, const char *value, size_t len)
{
	if (def->kind == KIND_STR) {
		if (len == 0 || len >= SPY_OPT_STR_MAX)
			return -1;
		char *dst = def->field;
		for (size_t i = 0; i < len; i++)
			dst[i] = value[i];
		dst[len] = '\0';
		return 0;
	}
	if (len == 0 || len > 12)
		return -1;
	unsigned long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (value[i] < '0' || value[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(value[i] - '0');
	}
	if (def->kind == KIND_BOOL) {
		if (v > 1)
			return -1;
		*(int *)def->field = (int)v;
		return 0;
	}
	if (!in_range(def->name, v))
		return -1;
	*(unsigned long *)def->field = v;
	return 0;
}

static const struct option_def *find(const char *name, size_t len)
{
	for (size_t i = 0; i < NDEFS; i++)
		if (spy_strlen(defs[i].name) == len &&
		    spy_strneq(defs[i].name, name, len))
			return &defs[i];
	return NULL;
}

void spy_options_parse(const char *text)
{
	for (size_t i = 0; i < NDEFS; i++)
		apply(&defs[i], defs[i].def, spy_strlen(defs[i].def));
	if (!text)
		return;
	const char *p = text;
	while (*p) {
		const char *end = p;
		while (*end && *end != ':')
			end++;
		const char *eq = p;
		while (eq < end && *eq != '=')
			eq++;
		size_t name_len = (size_t)(eq - p);
		char name[64];
		spy_strlcpy(name, p, name_len + 1 < sizeof(name) ? name_len + 1 : sizeof(name));
		if (end > p) {
			const struct option_def *def = find(p, name_len);
			if (!def)
				spy_error("unknown option '%s' (see spy --help)", name);
			else if (eq == end || apply(def, eq + 1, (size_t)(end - eq - 1)) < 0) {
				spy_error("bad value for option '%s' (see spy --help)", name);
				apply(def, def->def, spy_strlen(def->def));
			}
		}
		p = *end ? end + 1 : end;
	}
}
