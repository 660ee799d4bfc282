// swift-green: greenlet stacks.
//
// DESIGN
//
// A stack is a fixed range of virtual memory: pages cost RSS only once
// touched, so a large usable size (256 KiB by default) is cheap while a
// parked greenlet that used 3 KiB costs one page. What is not cheap is the
// number of memory mappings: Linux allows vm.max_map_count (65,530 by
// default) per process, and one mmap per stack plus an mprotect'ed guard
// page costs two of them, which stops near 30,000 greenlets.
//
// So stacks are carved out of slabs: one mmap (MAP_NORESERVE) holds
// GREEN_SLAB_STACKS stacks, each preceded by its guard zone. A million
// stacks are then about 4,000 mappings. The guard zone is protected by the
// best means the kernel offers, chosen once per process:
//
//   1. MADV_GUARD_INSTALL (Linux 6.13 and later): the kernel marks the
//      pages as guards in the page tables, without splitting the mapping.
//      Every stack gets a real guard at no cost in mappings. This is the
//      path on this project's machines.
//   2. mprotect(PROT_NONE), which splits the slab's mapping around each
//      guard (two more mappings per stack). Handed out up to a process-wide
//      budget (half of vm.max_map_count by default, so about 16,000 guarded
//      stacks), so that the rest of the program keeps its share of the limit.
//   3. Beyond that budget, no guard: a canary pattern fills the lowest
//      bytes of the stack and is checked every time the greenlet switches
//      out and when the stack is released. Greenlets on one hub run one at
//      a time, so an overflow is reported before any other greenlet of that
//      hub runs on the memory it may have smashed (its neighbour in the
//      slab). Weaker than a guard page (a frame that jumps the canary and
//      faults elsewhere is not named), which is why it is the last resort.
//
// The guard of a stack is installed the first time the stack is handed
// out, not when the slab is mapped, so a slab costs one system call and
// untouched stacks cost nothing. With MADV_GUARD_INSTALL, the guards of
// the next GREEN_GUARD_BATCH never-used stacks of the slab go in at once,
// in one process_madvise(2) call (on the calling process, PIDFD_SELF,
// Linux 6.14 and later; one madvise per stack otherwise): a burst of new
// greenlets pays one system call per batch instead of one per stack.
//
// Finished greenlets return their stack to a LIFO free list: the most
// recently used stack, still warm in cache and already backed by pages, is
// the next one handed out. At most `idle_limit` free stacks stay resident;
// a stack released beyond that gives its pages back with MADV_DONTNEED
// (the range, slot and guard stay) and goes to a second, cold list, used
// only when no resident stack is free. So after a burst the pool keeps
// `idle_limit` warm stacks, and steady spawn/join after it reuses them
// without a system call or a page fault. The stacks to trim wait in a
// short list and are trimmed GREEN_TRIM_BATCH at a time, in one
// process_madvise call where the kernel has it (as the guards): the end
// of a burst costs a system call per batch, not per stack, and a stack
// released and wanted again before its batch is trimmed is still warm.
#define _GNU_SOURCE
#include "green_switch.h"
#include "green_tools.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(GREEN_VALGRIND)
// Valgrind tells stacks apart by their registered ranges; without them it
// takes a switch between neighbouring stacks of a slab for a huge frame.
#include <valgrind/valgrind.h>
#endif

#if GREEN_ASAN
// LeakSanitizer scans threads' stacks for pointers, not memory it does not
// know: the stack of a greenlet in use is registered as a root region, or
// whatever only a parked greenlet references would be reported as leaked.
#include <sanitizer/lsan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#ifndef PIDFD_SELF
// The calling thread, for the pidfd argument of process_madvise (Linux
// 6.14 and later): its memory is the process's, and it needs no file
// descriptor, so it survives fork.
#define PIDFD_SELF (-10000)
#endif

enum { GREEN_SLAB_STACKS = 256 };
enum { GREEN_GUARD_BATCH = 32 };
enum { GREEN_TRIM_BATCH = 64 };
enum { GREEN_GUARD_BYTES = 16384 };
static const uint64_t GREEN_CANARY = 0x6772656e6c657421ull; // "grenlet!"
enum { GREEN_CANARY_WORDS = 32 };                           // 256 bytes

typedef struct green_slab {
    struct green_slab *next;
    char *mapping;
    size_t mapping_size;
    green_stack stacks[GREEN_SLAB_STACKS];
} green_slab;

struct green_stack_pool {
    size_t stack_size;
    size_t guard_size;
    int guard_kind;
    green_slab *slabs;
    size_t slab_count;
    size_t next_in_slab;    // next never-used slot of slabs (the newest)
    green_stack *free_list; // resident free stacks, LIFO
    size_t free_count;      // length of free_list
    green_stack *cold_list; // free stacks whose pages were given back
    size_t cold_count;
    green_stack *trim_list; // free stacks beyond the idle limit, to trim
    size_t trim_count;
    size_t idle_limit;      // free stacks kept resident
    size_t in_use;
    size_t total;
    size_t guarded[3];
};

static size_t page_size(void) {
    static size_t cached;
    if (!cached) cached = (size_t)sysconf(_SC_PAGESIZE);
    return cached;
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// --------------------------------------------------------- guard choice

static atomic_long mprotect_budget = -1; // -1: not computed yet

static long default_mprotect_budget(void) {
    long max_maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        long v;
        if (fscanf(f, "%ld", &v) == 1 && v > 0) max_maps = v;
        fclose(f);
    }
    // Each guard splits its slab's mapping, two more entries per guarded
    // stack; guards may use half of the limit.
    return max_maps / 2 / 2;
}

long green_stack_mprotect_budget_left(void) {
    long b = atomic_load(&mprotect_budget);
    if (b < 0) {
        long expected = -1;
        atomic_compare_exchange_strong(&mprotect_budget, &expected, default_mprotect_budget());
        b = atomic_load(&mprotect_budget);
    }
    return b;
}

void green_stack_set_mprotect_budget(long budget) { atomic_store(&mprotect_budget, budget); }

static int take_mprotect_budget(void) {
    long b = green_stack_mprotect_budget_left();
    while (b > 0) {
        if (atomic_compare_exchange_weak(&mprotect_budget, &b, b - 1)) return 1;
    }
    return 0;
}

// process_madvise on PIDFD_SELF: 1 while it has not failed (then the
// batches fall back to one madvise per range, for the process's life).
static atomic_int batched_madvise = 1;

// Applies `advice` to the `n` ranges of `iov` in one system call. Returns
// 0 if every range took it; -1 if the call is missing or failed (then
// nothing can be assumed of any range, and the caller does them one by
// one: both advices used here may be given twice).
static int madvise_batch(struct iovec *iov, size_t n, int advice) {
    if (!atomic_load_explicit(&batched_madvise, memory_order_relaxed)) return -1;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += iov[i].iov_len;
    long done = syscall(SYS_process_madvise, PIDFD_SELF, iov, n, advice, 0);
    if (done == (long)total) return 0;
    if (done < 0 && (errno == EBADF || errno == ENOSYS || errno == EINVAL || errno == EPERM)) {
        atomic_store_explicit(&batched_madvise, 0, memory_order_relaxed);
    }
    return -1;
}

static int probe_madvise_guard(void) {
    size_t ps = page_size();
    char *p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return 0;
    int ok = madvise(p, ps, MADV_GUARD_INSTALL) == 0;
    munmap(p, 2 * ps);
    return ok;
}

int green_stack_default_guard_kind(void) {
    static atomic_int cached = -1;
    int k = atomic_load(&cached);
    if (k >= 0) return k;
    const char *env = getenv("GREEN_STACK_GUARD");
    int madvise_ok = probe_madvise_guard();
    if (env && strcmp(env, "mprotect") == 0) k = GREEN_GUARD_MPROTECT;
    else if (env && strcmp(env, "canary") == 0) k = GREEN_GUARD_CANARY;
    else if (env && strcmp(env, "madvise") == 0 && madvise_ok) k = GREEN_GUARD_MADVISE;
    else k = madvise_ok ? GREEN_GUARD_MADVISE : GREEN_GUARD_MPROTECT;
    atomic_store(&cached, k);
    return k;
}

// ------------------------------------------------------------------ pool

green_stack_pool *green_stack_pool_create(size_t stack_size, int guard_kind) {
    green_stack_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    size_t ps = page_size();
    if (stack_size < 4 * ps) stack_size = 4 * ps;
    pool->stack_size = round_up(stack_size, ps);
    pool->guard_size = round_up(GREEN_GUARD_BYTES, ps);
    pool->guard_kind = guard_kind < 0 ? green_stack_default_guard_kind() : guard_kind;
    pool->next_in_slab = GREEN_SLAB_STACKS; // no slab yet
    pool->idle_limit = 1024;
    return pool;
}

void green_stack_pool_destroy(green_stack_pool *pool) {
    if (!pool) return;
    green_slab *s = pool->slabs;
    while (s) {
        green_slab *next = s->next;
        for (size_t i = 0; i < GREEN_SLAB_STACKS; i++) {
            if (s->stacks[i].guard_installed && s->stacks[i].guard_kind == GREEN_GUARD_MPROTECT) {
                atomic_fetch_add(&mprotect_budget, 1);
            }
#if defined(GREEN_VALGRIND)
            if (s->stacks[i].guard_installed) VALGRIND_STACK_DEREGISTER(s->stacks[i].valgrind_id);
#endif
#if GREEN_ASAN
            // Abandoned with the hub (its thread exited with greenlets
            // parked): what only they referenced is leaked, and reported.
            if (s->stacks[i].in_use) __lsan_unregister_root_region(s->stacks[i].base, s->stacks[i].size);
#endif
        }
        munmap(s->mapping, s->mapping_size);
        free(s);
        s = next;
    }
    free(pool);
}

static int add_slab(green_stack_pool *pool) {
    size_t stride = pool->guard_size + pool->stack_size;
    size_t size = stride * GREEN_SLAB_STACKS;
    char *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) return -1;
    green_slab *slab = calloc(1, sizeof *slab);
    if (!slab) {
        munmap(m, size);
        errno = ENOMEM;
        return -1;
    }
    slab->mapping = m;
    slab->mapping_size = size;
    for (size_t i = 0; i < GREEN_SLAB_STACKS; i++) {
        green_stack *st = &slab->stacks[i];
        st->base = m + i * stride + pool->guard_size;
        st->size = pool->stack_size;
    }
    slab->next = pool->slabs;
    pool->slabs = slab;
    pool->slab_count++;
    pool->next_in_slab = 0;
    return 0;
}

static void write_canary(green_stack *st) {
    uint64_t *w = (uint64_t *)st->base;
    for (int i = 0; i < GREEN_CANARY_WORDS; i++) w[i] = GREEN_CANARY ^ (uint64_t)i;
}

int green_stack_canary_intact(const green_stack *st) {
    const uint64_t *w = (const uint64_t *)st->base;
    for (int i = 0; i < GREEN_CANARY_WORDS; i++) {
        if (w[i] != (GREEN_CANARY ^ (uint64_t)i)) return 0;
    }
    return 1;
}

// The guards of the never-used stacks [first, first + GREEN_GUARD_BATCH)
// of the pool's newest slab, installed in one call (MADV_GUARD_INSTALL
// only: they split no mapping and take no budget). Marks them installed;
// each is counted in `guarded` when it is handed out. Nothing if the batch
// could not be made (the caller installs its one guard).
static void install_guards_ahead(green_stack_pool *pool, size_t first) {
#if defined(GREEN_VALGRIND)
    // Valgrind learns of each stack as its guard goes in (install_guard).
    (void)pool; (void)first;
#else
    green_slab *slab = pool->slabs;
    size_t end = first + GREEN_GUARD_BATCH;
    if (end > GREEN_SLAB_STACKS) end = GREEN_SLAB_STACKS;
    struct iovec iov[GREEN_GUARD_BATCH];
    size_t n = 0;
    for (size_t i = first; i < end; i++) {
        if (slab->stacks[i].guard_installed) break;
        iov[n].iov_base = slab->stacks[i].base - pool->guard_size;
        iov[n].iov_len = pool->guard_size;
        n++;
    }
    if (n < 2 || madvise_batch(iov, n, MADV_GUARD_INSTALL) != 0) return;
    for (size_t i = first; i < first + n; i++) {
        green_stack *st = &slab->stacks[i];
        st->guard_kind = GREEN_GUARD_MADVISE;
        st->guard_size = (uint32_t)pool->guard_size;
        st->guard_installed = 1;
    }
#endif
}

static void install_guard(green_stack_pool *pool, green_stack *st) {
    char *guard = st->base - pool->guard_size;
    int kind = pool->guard_kind;
    if (kind == GREEN_GUARD_MADVISE) {
        if (madvise(guard, pool->guard_size, MADV_GUARD_INSTALL) != 0) kind = GREEN_GUARD_MPROTECT;
    }
    if (kind == GREEN_GUARD_MPROTECT) {
        if (!take_mprotect_budget() || mprotect(guard, pool->guard_size, PROT_NONE) != 0) {
            kind = GREEN_GUARD_CANARY;
        }
    }
    st->guard_kind = (uint8_t)kind;
    st->guard_size = kind == GREEN_GUARD_CANARY ? 0 : (uint32_t)pool->guard_size;
    st->guard_installed = 1;
    pool->guarded[kind]++;
#if defined(GREEN_VALGRIND)
    st->valgrind_id = VALGRIND_STACK_REGISTER(st->base, st->base + st->size);
#endif
}

green_stack *green_stack_acquire(green_stack_pool *pool) {
    green_stack *st = pool->free_list;
    if (st) {
        pool->free_list = st->next_free;
        pool->free_count--;
    } else if ((st = pool->trim_list)) {
        // Not trimmed yet: still warm.
        pool->trim_list = st->next_free;
        pool->trim_count--;
    } else if ((st = pool->cold_list)) {
        pool->cold_list = st->next_free;
        pool->cold_count--;
    } else {
        if (pool->next_in_slab >= GREEN_SLAB_STACKS && add_slab(pool) != 0) return NULL;
        size_t i = pool->next_in_slab++;
        st = &pool->slabs->stacks[i];
        pool->total++;
        if (!st->guard_installed && pool->guard_kind == GREEN_GUARD_MADVISE) install_guards_ahead(pool, i);
        if (st->guard_installed) {
            pool->guarded[st->guard_kind]++;
        } else {
            install_guard(pool, st);
        }
    }
    if (st->guard_kind == GREEN_GUARD_CANARY) write_canary(st);
    st->next_free = NULL;
    st->in_use = 1;
    pool->in_use++;
#if GREEN_ASAN
    __lsan_register_root_region(st->base, st->size);
#endif
    return st;
}

// Gives the pages of every stack on the trim list back to the kernel and
// moves them to the cold list.
static void trim(green_stack_pool *pool) {
    struct iovec iov[GREEN_TRIM_BATCH];
    size_t n = 0;
    for (green_stack *st = pool->trim_list; st; st = st->next_free) {
        iov[n].iov_base = st->base;
        iov[n].iov_len = st->size;
        n++;
    }
    int batched = madvise_batch(iov, n, MADV_DONTNEED) == 0;
    while (pool->trim_list) {
        green_stack *st = pool->trim_list;
        pool->trim_list = st->next_free;
        if (!batched) madvise(st->base, st->size, MADV_DONTNEED);
        st->next_free = pool->cold_list;
        pool->cold_list = st;
        pool->cold_count++;
    }
    pool->trim_count = 0;
}

void green_stack_release(green_stack_pool *pool, green_stack *st) {
    if (st->guard_kind == GREEN_GUARD_CANARY && !green_stack_canary_intact(st)) {
        green_context ctx;
        memset(&ctx, 0, sizeof ctx);
        ctx.stack = st;
        strcpy(ctx.name, "(finished greenlet)");
        green_context_report_overflow(&ctx, NULL, "its canary was overwritten (found when its stack was released)");
    }
    st->in_use = 0;
    pool->in_use--;
#if GREEN_ASAN
    __lsan_unregister_root_region(st->base, st->size);
#endif
    if (pool->free_count >= pool->idle_limit) {
        // Keep the slot and the guard, give the pages back: with the next
        // few, in one call.
        st->next_free = pool->trim_list;
        pool->trim_list = st;
        if (++pool->trim_count == GREEN_TRIM_BATCH) trim(pool);
        return;
    }
    st->next_free = pool->free_list;
    pool->free_list = st;
    pool->free_count++;
}

size_t green_stack_pool_stack_size(const green_stack_pool *pool) { return pool->stack_size; }
size_t green_stack_pool_in_use(const green_stack_pool *pool) { return pool->in_use; }
size_t green_stack_pool_free_count(const green_stack_pool *pool) {
    return pool->free_count + pool->trim_count + pool->cold_count;
}
size_t green_stack_pool_resident_free_count(const green_stack_pool *pool) {
    return pool->free_count + pool->trim_count;
}
size_t green_stack_pool_total(const green_stack_pool *pool) { return pool->total; }
size_t green_stack_pool_slab_count(const green_stack_pool *pool) { return pool->slab_count; }
size_t green_stack_pool_guarded(const green_stack_pool *pool, int kind) {
    return (kind >= 0 && kind < 3) ? pool->guarded[kind] : 0;
}
void green_stack_pool_set_idle_limit(green_stack_pool *pool, size_t limit) { pool->idle_limit = limit; }
