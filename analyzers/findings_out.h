/* findings_out.h: renders findings as text (wrapped to 80 columns) or as
 * the "findings" array of the JSON contract in DESIGN.md.
 */
#ifndef SPY_FINDINGS_OUT_H
#define SPY_FINDINGS_OUT_H

#include "findings.h"
#include "json_writer.h"
#include "symbolize.h"
#include "text_out.h"

/* Every finding, most severe first as the list holds them; "no findings"
 * when the list is empty. */
void findings_print_text(const struct text_out *t, struct symbolizer *sym,
			 const struct finding_list *l);

/* Writes the JSON array of findings (the caller has written the key). */
void findings_print_json(struct json_writer *w, struct symbolizer *sym,
			 const struct finding_list *l);

#endif
