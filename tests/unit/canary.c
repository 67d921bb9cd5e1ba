/* canary.c: the pattern in a block's slack (preload/spy_canary.c): for
 * every asked size against a usable size, a canary that was set reads as
 * intact, and a change of any one byte past the asked size, to any other
 * value tried, reads as changed; no slack, no canary; the program's own
 * bytes are never part of it. (Not tried: a last byte changed into
 * another valid mark, 0xc1 to 0xc8, with the bytes that mark claims
 * still 0xac: the one change the pattern cannot tell.)
 */
#include <string.h>

#include "spy_canary.h"
#include "tap.h"

int main(void)
{
	unsigned char block[400];
	static const unsigned char values[] = { 0x00, 0x01, 0x0a, 0x20, 0x41,
						0x7e, 0xab, 0xac, 0xad, 0xa5,
						0xc0, 0xc9, 0xff };
	int set_ok = 1, intact_ok = 1, caught = 1, own_ok = 1;
	size_t missed_asked = 0, missed_off = 0;
	for (size_t usable = 24; usable <= 360; usable += 16) {
		for (size_t asked = usable > 300 ? usable - 300 : 0;
		     asked < usable; asked++) {
			memset(block, 0x5a, sizeof(block));
			if (!spy_canary_room(asked, usable)) {
				set_ok = 0;
				continue;
			}
			spy_canary_set(block, asked, usable);
			/* the program's bytes are left alone */
			for (size_t i = 0; i < asked; i++)
				if (block[i] != 0x5a)
					own_ok = 0;
			if (!spy_canary_intact(block, usable))
				intact_ok = 0;
			/* any byte past the end that the canary covers */
			size_t covered = usable - asked > 8 && usable - asked - 8 > 256
				? asked + 256 : usable;
			for (size_t off = asked; off < usable; off++) {
				if (off >= covered && off < usable - 8)
					continue;
				unsigned char was = block[off];
				for (size_t v = 0; v < sizeof(values); v++) {
					if (values[v] == was)
						continue;
					block[off] = values[v];
					if (spy_canary_intact(block, usable)) {
						caught = 0;
						missed_asked = asked;
						missed_off = off;
					}
				}
				block[off] = was;
			}
		}
	}
	ok(set_ok, "there is room for a canary wherever there is slack");
	ok(own_ok, "the bytes asked for are never touched");
	ok(intact_ok, "a canary as set reads as intact");
	ok(caught, "every changed byte past the end is caught (missed: asked %zu, byte %zu)",
	   missed_asked, missed_off);
	memset(block, 0x5a, sizeof(block));
	ok(!spy_canary_room(24, 24), "no slack: no room for a canary");
	ok(!spy_canary_intact(block, 24), "a block without one does not read as intact");
	return tap_done();
}
