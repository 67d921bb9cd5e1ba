/* ownmem.c: the registry of libspy's own mappings (preload/spy_ownmem.c):
 * ranges noted and forgotten come back sorted, whole pages, neighbours
 * merged; thousands at once (a thread each) are kept; a forgotten one is
 * gone.
 */
#include <stdint.h>

#include "spy_ownmem.h"
#include "tap.h"

int main(void)
{
	uintptr_t out[4200][2];
	const uintptr_t base = 0x7f0000000000ull;

	/* three ranges, two of them neighbours, noted out of order */
	spy_ownmem_note((void *)(base + 0x10000), 100);      /* one page */
	spy_ownmem_note((void *)base, 0x2000);
	spy_ownmem_note((void *)(base + 0x2000), 0x1000);
	size_t n = spy_ownmem_ranges(out, 4200);
	ok(n == 2 && out[0][0] == base && out[0][1] == base + 0x3000 &&
	   out[1][0] == base + 0x10000 && out[1][1] == base + 0x11000,
	   "sorted, rounded to pages, neighbours merged (%zu ranges)", n);
	spy_ownmem_forget((void *)base, 0x2000);
	n = spy_ownmem_ranges(out, 4200);
	ok(n == 2 && out[0][0] == base + 0x2000, "a forgotten range is gone");
	spy_ownmem_forget((void *)(base + 0x2000), 0x1000);
	spy_ownmem_forget((void *)(base + 0x10000), 100);
	ok(spy_ownmem_ranges(out, 4200) == 0, "all forgotten: none left");

	/* 4000 at once, 2 pages apart: all kept, then half forgotten */
	for (uintptr_t i = 0; i < 4000; i++)
		spy_ownmem_note((void *)(base + i * 0x2000), 4096);
	n = spy_ownmem_ranges(out, 4200);
	ok(n == 4000, "4000 ranges at once are all kept (%zu)", n);
	for (uintptr_t i = 0; i < 4000; i += 2)
		spy_ownmem_forget((void *)(base + i * 0x2000), 4096);
	n = spy_ownmem_ranges(out, 4200);
	int right = n == 2000;
	for (size_t k = 0; right && k < n; k++)
		right = out[k][0] == base + (2 * k + 1) * 0x2000;
	ok(right, "half forgotten: the other half is left, in order");
	return tap_done();
}
