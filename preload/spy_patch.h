/* spy_patch.h: redirects the entry of a function inside libc to a hook,
 * so that calls made from inside libc itself (stdio's writes) reach the
 * hook as well as calls through the PLT. x86-64 only.
 *
 * Only entries whose first instructions are of a few verified shapes are
 * patched (the instructions are decoded, never guessed); the displaced
 * instructions are relocated into a trampoline that then jumps back, and
 * the entry's first 5 bytes become a jump to a stub near libc that jumps
 * to the hook. The 5 bytes are replaced by one aligned 8-byte store, and
 * only while the process has a single thread. Anything else is refused
 * and the caller keeps its PLT-level hook.
 * Runs at start-up with the guard held; never allocates (mmap only).
 */
#ifndef SPY_PATCH_H
#define SPY_PATCH_H

/* Makes entry jump to hook. Returns a pointer to call for the original
 * behaviour (the trampoline), or NULL when the entry was left as it was;
 * *why then says why in a few words ("unknown prologue", ...). */
void *spy_patch_entry(void *entry, void *hook, const char **why);

/* Seals the stubs and trampolines (read and execute only). Call after the
 * last spy_patch_entry; 0, or -1 when they cannot be made executable (the
 * trampolines must then not be called, and nothing will be patched). */
int spy_patch_seal(void);

/* Writes the jumps of every entry prepared by spy_patch_entry, if the
 * process has a single thread; entries whose page cannot be made
 * writable stay as they were (spy_patch_applied says which). */
void spy_patch_apply(void);

/* 1 if spy_patch_seal redirected entry to its hook. */
int spy_patch_applied(void *entry);

/* 1 if the process has exactly one thread (the one that asks). */
int spy_patch_single_threaded(void);

#endif
