/* u64map.c: open-addressing uint64_t -> uint64_t hash map. */
#include "u64map.h"

#include <stdlib.h>

static size_t slot_of(uint64_t key, size_t cap)
{
	/* A multiplicative mix: addresses share low zero bits and high
	 * prefixes, so spread them before masking. */
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	key *= 0xc4ceb9fe1a85ec53ULL;
	key ^= key >> 33;
	return (size_t)key & (cap - 1);
}

static int grow(struct u64map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	uint64_t *nk = calloc(ncap, sizeof(*nk));
	uint64_t *nv = malloc(ncap * sizeof(*nv));
	if (!nk || !nv) {
		free(nk);
		free(nv);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		uint64_t k = m->keys[i];
		if (!k)
			continue;
		size_t s = slot_of(k, ncap);
		while (nk[s])
			s = (s + 1) & (ncap - 1);
		nk[s] = k;
		nv[s] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = nk;
	m->vals = nv;
	m->cap = ncap;
	return 0;
}

int u64map_put(struct u64map *m, uint64_t key, uint64_t val)
{
	if (!key) {
		if (!m->has_zero)
			m->len++;
		m->has_zero = true;
		m->zero_val = val;
		return 0;
	}
	/* Keep the load factor at or below 1/2 so probes stay short. */
	if ((m->len + 1) * 2 > m->cap && grow(m) < 0)
		return -1;
	size_t s = slot_of(key, m->cap);
	while (m->keys[s] && m->keys[s] != key)
		s = (s + 1) & (m->cap - 1);
	if (!m->keys[s]) {
		m->keys[s] = key;
		m->len++;
	}
	m->vals[s] = val;
	return 0;
}

uint64_t *u64map_get(const struct u64map *m, uint64_t key)
{
	if (!key)
		return m->has_zero ? (uint64_t *)&m->zero_val : NULL;
	if (!m->cap)
		return NULL;
	size_t s = slot_of(key, m->cap);
	while (m->keys[s]) {
		if (m->keys[s] == key)
			return &m->vals[s];
		s = (s + 1) & (m->cap - 1);
	}
	return NULL;
}

bool u64map_remove(struct u64map *m, uint64_t key, uint64_t *val)
{
	if (!key) {
		if (!m->has_zero)
			return false;
		if (val)
			*val = m->zero_val;
		m->has_zero = false;
		m->len--;
		return true;
	}
	if (!m->cap)
		return false;
	size_t mask = m->cap - 1;
	size_t s = slot_of(key, m->cap);
	while (m->keys[s] && m->keys[s] != key)
		s = (s + 1) & mask;
	if (!m->keys[s])
		return false;
	if (val)
		*val = m->vals[s];
	/* Backward-shift: pull later members of the probe run into the hole
	 * when their home slot does not lie cyclically in (hole, j]. */
	size_t hole = s, j = s;
	for (;;) {
		j = (j + 1) & mask;
		if (!m->keys[j])
			break;
		size_t home = slot_of(m->keys[j], m->cap);
		bool stays = hole <= j ? (hole < home && home <= j)
				       : (hole < home || home <= j);
		if (stays)
			continue;
		m->keys[hole] = m->keys[j];
		m->vals[hole] = m->vals[j];
		hole = j;
	}
	m->keys[hole] = 0;
	m->len--;
	return true;
}

int u64map_each(const struct u64map *m,
		int (*fn)(uint64_t key, uint64_t val, void *arg), void *arg)
{
	int r;
	if (m->has_zero && (r = fn(0, m->zero_val, arg)))
		return r;
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i] && (r = fn(m->keys[i], m->vals[i], arg)))
			return r;
	return 0;
}

void u64map_release(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	*m = (struct u64map)U64MAP_INIT;
}
