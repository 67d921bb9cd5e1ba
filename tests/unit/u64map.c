/* Unit test: the open-addressing map agrees with a plain array model under
 * random puts, gets and removes (removal shifts entries back, so this is
 * where it would go wrong). */
#include <stdlib.h>

#include "tap.h"
#include "u64map.h"

#define KEYS 4096

int main(void)
{
	struct u64map m = U64MAP_INIT;
	static uint64_t model[KEYS];
	static int present[KEYS];
	uint64_t st = 42;
	int mismatches = 0;
	size_t live = 0;
	for (int step = 0; step < 400000; step++) {
		st = st * 6364136223846793005ull + 1442695040888963407ull;
		/* Keys cluster like heap addresses, and include 0. */
		size_t k = (size_t)(st >> 40) % KEYS;
		uint64_t key = (uint64_t)k * 16;
		int op = (int)(st >> 20) % 3;
		if (op == 0) {
			if (u64map_put(&m, key, st) < 0)
				mismatches++;
			live += !present[k];
			present[k] = 1;
			model[k] = st;
		} else if (op == 1) {
			uint64_t v = 0;
			int had = u64map_remove(&m, key, &v);
			if (had != present[k] || (had && v != model[k]))
				mismatches++;
			live -= present[k];
			present[k] = 0;
		} else {
			uint64_t *v = u64map_get(&m, key);
			if ((v != NULL) != present[k] ||
			    (v && *v != model[k]))
				mismatches++;
		}
	}
	ok(mismatches == 0, "400000 random operations agree with the model");
	ok(m.len == live, "entry count (%zu, model %zu)", m.len, live);
	int missing = 0;
	for (size_t k = 0; k < KEYS; k++) {
		uint64_t *v = u64map_get(&m, (uint64_t)k * 16);
		if ((v != NULL) != present[k])
			missing++;
	}
	ok(missing == 0, "every key found or absent as expected");
	u64map_release(&m);
	ok(m.len == 0 && u64map_get(&m, 16) == NULL, "released map is empty");
	return tap_done();
}
