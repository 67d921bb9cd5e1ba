/* u64map.h: an open-addressing hash map from uint64_t keys to uint64_t
 * values (linear probing, backward-shift deletion, no tombstones). Used for
 * address -> size, stack id -> index, tid -> thread and the like.
 */
#ifndef SPY_U64MAP_H
#define SPY_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct u64map {
	uint64_t *keys;  /* 0 marks an empty slot; key 0 lives in zero_val */
	uint64_t *vals;
	size_t cap;      /* a power of two, or 0 before the first insert */
	size_t len;      /* entries, including key 0 */
	bool has_zero;
	uint64_t zero_val;
};

#define U64MAP_INIT { 0 }

/* Sets key to val, replacing an old value. Returns 0, or -1 when memory
 * runs out (the map is unchanged). */
int u64map_put(struct u64map *m, uint64_t key, uint64_t val);

/* Returns a pointer to key's value (valid until the next put or remove), or
 * NULL when key is absent. */
uint64_t *u64map_get(const struct u64map *m, uint64_t key);

/* Removes key; returns true if it was there, storing its value in *val
 * (val may be NULL). */
bool u64map_remove(struct u64map *m, uint64_t key, uint64_t *val);

/* Visits every entry in no particular order; stops early when fn returns
 * non-zero and returns that value. fn must not change the map. */
int u64map_each(const struct u64map *m,
		int (*fn)(uint64_t key, uint64_t val, void *arg), void *arg);

/* Frees the map's memory; the map is empty and reusable afterwards. */
void u64map_release(struct u64map *m);

#endif
