/* map_out.h: pieces of text and JSON that `analyze map` and `analyze
 * where` both write about regions of the process map.
 */
#ifndef SPY_MAP_OUT_H
#define SPY_MAP_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "commands.h"
#include "heap_history.h"
#include "json_writer.h"
#include "proc_map.h"
#include "threads_model.h"

/* A trace loaded with everything the two views need. */
struct map_input {
	struct trace_model m;
	struct threads_model tm;
	struct heap_history h;  /* the blocks that held one address */
	struct proc_maps pm;
};

/* Loads trace into in, with the history of the blocks that held
 * *holding (none when holding is NULL). Returns 0, or 2 after a one-line
 * error on stderr (in is then empty). Release with map_input_release. */
int map_input_load(const char *trace, const uint64_t *holding,
		   struct map_input *in);
void map_input_release(struct map_input *in);

/* "rw-p" from a prot value. */
void map_prot_text(uint64_t prot, char out[5]);

/* "live blocks: 3 (1.2 KiB), freed: 17 (4 KiB), by thread 12" */
void map_blocks_text(char *buf, size_t len, const struct map_blocks *b);

/* The JSON object of one region (with its blocks when with_blocks). */
void map_region_json(struct json_writer *w, const struct map_region *r,
		     const struct proc_map *mp, uint32_t main_tid, bool with_blocks);

#endif
