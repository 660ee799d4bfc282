// swift-green: greenlet stacks and their pools (stack.c).
#ifndef SWIFT_GREEN_STACK_H
#define SWIFT_GREEN_STACK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// How a stack's lower end is protected.
typedef enum green_guard_kind {
    /// MADV_GUARD_INSTALL (Linux 6.13+): guard pages that live in the page
    /// tables and do not split the memory mapping, so they cost no entry of
    /// vm.max_map_count. Preferred whenever the kernel has it.
    GREEN_GUARD_MADVISE = 0,
    /// mprotect(PROT_NONE): a classic guard page. Each one splits the slab's
    /// mapping in two, so they are handed out up to a process-wide budget.
    GREEN_GUARD_MPROTECT = 1,
    /// No guard page: a canary pattern at the bottom of the stack, checked
    /// each time the context switches out and when the stack is released.
    GREEN_GUARD_CANARY = 2,
} green_guard_kind;

typedef struct green_stack {
    /// Lowest usable address (just above the guard zone).
    char *base;
    /// Usable bytes, from `base` up.
    size_t size;
    struct green_stack *next_free;
    /// Bytes below `base` that fault when touched (0 for canary stacks).
    uint32_t guard_size;
    uint8_t guard_kind;      // green_guard_kind
    uint8_t guard_installed; // guard set up on first use, kept across reuse
    uint8_t in_use;
    /// Valgrind's id for this stack (builds with GREEN_VALGRIND only).
    uint32_t valgrind_id;
} green_stack;

typedef struct green_stack_pool green_stack_pool;

/// Creates a pool of stacks of `stack_size` usable bytes (rounded up to
/// pages). `guard_kind` < 0 picks the best the kernel offers. Thread-
/// confined: one pool per hub.
green_stack_pool *green_stack_pool_create(size_t stack_size, int guard_kind);
/// Unmaps every slab. Only call when no stack of the pool is in use.
void green_stack_pool_destroy(green_stack_pool *pool);
/// A stack ready to run on, from the free list or a new slab; NULL with
/// errno set when memory (or the mapping budget) is exhausted.
green_stack *green_stack_acquire(green_stack_pool *pool);
/// Returns a stack to the free list. Stacks beyond the pool's idle limit
/// give their pages back to the kernel (MADV_DONTNEED) but keep their
/// address range, guard and slot.
void green_stack_release(green_stack_pool *pool, green_stack *stack);
size_t green_stack_pool_stack_size(const green_stack_pool *pool);
size_t green_stack_pool_in_use(const green_stack_pool *pool);
size_t green_stack_pool_free_count(const green_stack_pool *pool);
size_t green_stack_pool_resident_free_count(const green_stack_pool *pool);
size_t green_stack_pool_total(const green_stack_pool *pool);
size_t green_stack_pool_slab_count(const green_stack_pool *pool);
/// How many stacks of each guard kind the pool has set up.
size_t green_stack_pool_guarded(const green_stack_pool *pool, int guard_kind);
void green_stack_pool_set_idle_limit(green_stack_pool *pool, size_t limit);
/// The guard kind `green_stack_pool_create(.., -1)` picks on this kernel,
/// after environment overrides (GREEN_STACK_GUARD=madvise|mprotect|canary).
int green_stack_default_guard_kind(void);
/// Process-wide number of mprotect guard pages that may still be set up.
long green_stack_mprotect_budget_left(void);
void green_stack_set_mprotect_budget(long budget);

#ifdef __cplusplus
}
#endif

#endif
