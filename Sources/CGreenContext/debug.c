// swift-green: the table debuggers read (see green_debug.h).
#define _GNU_SOURCE   // REG_RIP and the other register names of ucontext.h
#include "green_debug.h"
#include "green_compact.h"
#include "green_frames.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <ucontext.h>

#define C_OFFSET(type, field) ((int32_t)offsetof(type, field))

// Where a ucontext_t keeps the registers an unwinder starts from (the same
// ones frames.c reads); -1 on a CPU frames.c does not know either.
#if defined(__x86_64__)
#define UC_PC C_OFFSET(ucontext_t, uc_mcontext.gregs[REG_RIP])
#define UC_SP C_OFFSET(ucontext_t, uc_mcontext.gregs[REG_RSP])
#define UC_FP C_OFFSET(ucontext_t, uc_mcontext.gregs[REG_RBP])
#define ARCH 1
#elif defined(__aarch64__)
#define UC_PC C_OFFSET(ucontext_t, uc_mcontext.pc)
#define UC_SP C_OFFSET(ucontext_t, uc_mcontext.sp)
#define UC_FP C_OFFSET(ucontext_t, uc_mcontext.regs[29])
#define ARCH 2
#else
#define UC_PC (-1)
#define UC_SP (-1)
#define UC_FP (-1)
#define ARCH 0
#endif
#if !defined(GREEN_SWITCH_FRAME_FP)
#define GREEN_SWITCH_FRAME_FP (-1)
#define GREEN_SWITCH_FRAME_PC (-1)
#define GREEN_SWITCH_FRAME_SIZE (-1)
#endif

// Found by name: kept even though nothing in the program reads it, and
// visible from outside a shared library that contains it.
__attribute__((used, visibility("default")))
green_debug_info green_debug = {
    .magic = GREEN_DEBUG_MAGIC,
    .version = GREEN_DEBUG_VERSION,
    .size = sizeof(green_debug_info),
    .c_layout_size = sizeof(green_debug_c_layout),
    .swift_layout_size = sizeof(green_debug_swift_layout),
    .max_hubs = GREEN_DEBUG_MAX_HUBS,
    .arch = ARCH,
    .c = {
        .context_sp = C_OFFSET(green_context, sp),
        .context_ucontext = C_OFFSET(green_context, ucontext),
        .context_stack = C_OFFSET(green_context, stack),
        .context_id = C_OFFSET(green_context, id),
        .context_name = C_OFFSET(green_context, name),
        .context_name_size = (int32_t)sizeof(((green_context *)0)->name),
        .context_kind = C_OFFSET(green_context, kind),
        .context_shared = C_OFFSET(green_context, shared),
        .context_saved = C_OFFSET(green_context, saved),
        .context_saved_size = C_OFFSET(green_context, saved_size),
        .stack_base = C_OFFSET(green_stack, base),
        .stack_size = C_OFFSET(green_stack, size),
        .shared_stack = C_OFFSET(green_shared_stack, stack),
        .shared_top = C_OFFSET(green_shared_stack, top),
        .shared_owner = C_OFFSET(green_shared_stack, owner),
        .ucontext_pc = UC_PC,
        .ucontext_sp = UC_SP,
        .ucontext_fp = UC_FP,
        .switch_fp = GREEN_SWITCH_FRAME_FP,
        .switch_pc = GREEN_SWITCH_FRAME_PC,
        .switch_size = GREEN_SWITCH_FRAME_SIZE,
    },
};

// Hubs come and go on their own threads; a debugger reads the table only
// while the process is stopped, so it needs no lock of its own.
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

void green_debug_set_swift_layout(const green_debug_swift_layout *layout, int verified) {
    pthread_mutex_lock(&table_lock);
    // A layout that failed its check once stays distrusted.
    if (green_debug.swift_layout_state != -1) {
        green_debug.swift = *layout;
        green_debug.swift_layout_state = verified ? 1 : -1;
    }
    pthread_mutex_unlock(&table_lock);
}

void green_debug_register_hub(void *hub, uint64_t id, uint64_t thread) {
    pthread_mutex_lock(&table_lock);
    int placed = 0;
    for (int i = 0; i < GREEN_DEBUG_MAX_HUBS && !placed; i++) {
        green_debug_hub *slot = &green_debug.hubs[i];
        if (slot->hub != NULL) continue;
        slot->id = id;
        slot->thread = thread;
        slot->hub = hub;   // last: a slot with a hub is complete
        placed = 1;
    }
    if (!placed) green_debug.hubs_dropped++;
    pthread_mutex_unlock(&table_lock);
}

void green_debug_unregister_hub(void *hub) {
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < GREEN_DEBUG_MAX_HUBS; i++) {
        green_debug_hub *slot = &green_debug.hubs[i];
        if (slot->hub != hub) continue;
        memset(slot, 0, sizeof *slot);
        break;
    }
    pthread_mutex_unlock(&table_lock);
}

int green_debug_hub_listed(const void *hub) {
    pthread_mutex_lock(&table_lock);
    int listed = 0;
    for (int i = 0; i < GREEN_DEBUG_MAX_HUBS && !listed; i++) listed = hub != NULL && green_debug.hubs[i].hub == hub;
    pthread_mutex_unlock(&table_lock);
    return listed;
}

int green_debug_swift_layout_state(void) {
    pthread_mutex_lock(&table_lock);
    int state = green_debug.swift_layout_state;
    pthread_mutex_unlock(&table_lock);
    return state;
}
