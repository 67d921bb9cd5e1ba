/* spy_options.h: the parsed SPY_OPTIONS (see common/options_table.h). */
#ifndef SPY_OPTIONS_H
#define SPY_OPTIONS_H

#include "options_table.h"

#define SPY_OPT_STR_MAX 512

struct spy_options {
#define BOOL_FIELD(name) int name;
#define UINT_FIELD(name) unsigned long name;
#define STR_FIELD(name) char name[SPY_OPT_STR_MAX];
#define SPY_OPTION(name, kind, def, help) kind##_FIELD(name)
	SPY_OPTIONS_LIST(SPY_OPTION)
#undef SPY_OPTION
#undef BOOL_FIELD
#undef UINT_FIELD
#undef STR_FIELD
};

extern struct spy_options spy_opt;

/* Sets every option to its default, then applies the text of SPY_OPTIONS
 * (NULL or "" for none). A bad entry prints one line on stderr and keeps
 * the default; parsing goes on with the next entry. Cannot fail. */
void spy_options_parse(const char *text);

#endif
