/* lock_dwarf.h: names a lock inside a global variable the way its source
 * would ("accounts[1].m"), from the DWARF of the file that defines it. */
#ifndef SPY_LOCK_DWARF_H
#define SPY_LOCK_DWARF_H

#include <stddef.h>
#include <stdint.h>

/* The variable var starts at var_start (a run-time address) in the ELF
 * file path loaded at bias; writes into buf the expression for the byte
 * off inside it. Returns 0, or -1 when the file, its debug information or
 * the variable cannot be found (buf is then untouched). With var NULL,
 * the variable is the one that holds the address var_start (off is then
 * ignored). Opens only regular files outside /proc, /sys and /dev. */
int lock_dwarf_name(const char *path, uint64_t bias, uint64_t var_start,
		    uint64_t off, const char *var, char *buf, size_t cap);

#endif
