// swift-green: the table a debugger reads to find the hubs and greenlets of
// a process, live or in a core file (Tools/gdb/green.py).
//
// A debugger looking at a core file cannot call into the program, and does
// not understand Swift objects. So the process keeps, in one global it can
// find by name (`green_debug`, a green_debug_info), everything needed to
// walk its greenlets by reading memory alone: where each hub object is, and
// at which byte offsets the fields to read lie, in the hubs and greenlets
// (Swift classes, measured when the first hub registers, see
// HubDebugInfo.swift) and in the C structures (known here, at compile time).
//
// Hubs are added when they are made and removed when they go: nothing here
// is touched by a context switch, a park or a wake-up. Every field is a
// fixed-width integer, so a reader needs no debug information for C either:
// the layout below is the format (green.py unpacks it field by field; a
// change of layout changes GREEN_DEBUG_VERSION).
#ifndef SWIFT_GREEN_DEBUG_H
#define SWIFT_GREEN_DEBUG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// "grendbg1" in memory (little endian).
#define GREEN_DEBUG_MAGIC 0x316762646e657267ULL
#define GREEN_DEBUG_VERSION 2
/// Hubs listed at most; later ones are counted in `hubs_dropped`.
#define GREEN_DEBUG_MAX_HUBS 256

/// Byte offsets of the fields of the C structures a reader needs. Where a
/// suspended context's registers are is in its own words: the frame the
/// switch leaves at `sp` (switch_*.S), or its ucontext.
typedef struct green_debug_c_layout {
    int32_t context_sp, context_ucontext, context_stack, context_id, context_name, context_name_size,
        context_kind, context_shared, context_saved, context_saved_size;
    int32_t stack_base, stack_size;
    int32_t shared_stack, shared_top, shared_owner;
    /// In a ucontext_t: the program counter, stack and frame pointers.
    int32_t ucontext_pc, ucontext_sp, ucontext_fp;
    /// From an assembly context's `sp`: the saved frame pointer, the
    /// return address, and where the stack pointer is once the switch has
    /// returned (GREEN_SWITCH_FRAME_* in green_frames.h).
    int32_t switch_fp, switch_pc, switch_size;
} green_debug_c_layout;

/// Byte offsets, from the object's address, of the stored properties of
/// `AnyGreenlet` and `Hub` a reader needs, and of the words of a
/// `StaticString`; -1 where not known. `state` is one byte: 0 pending,
/// 1 ready, 2 running, 3 parked, 4 finished. `liveNext`, `liveHead`,
/// `mainGreenlet`, `hubGreenlet`, `current` and `virtualClock` are object
/// addresses (0: none); `parkedSince`, `loopTime` and `timeOffset` doubles;
/// `extras` the address of the greenlet's `AnyGreenlet.Extras` (0: none),
/// in which `customName` is a Swift String? (16 bytes, both 0 for nil).
typedef struct green_debug_swift_layout {
    int32_t greenlet_id, greenlet_parent_id, greenlet_state, greenlet_context, greenlet_waiting_on,
        greenlet_parked_since, greenlet_live_next, greenlet_is_compact, greenlet_extras, extras_custom_name;
    int32_t static_string_start, static_string_count, static_string_flags;
    int32_t hub_live_head, hub_main_greenlet, hub_hub_greenlet, hub_current, hub_loop_time,
        hub_time_offset, hub_virtual_clock;
} green_debug_swift_layout;

/// One registered hub: the Swift object's address, its number (`Hub.id`)
/// and its thread (a pthread_t). A free slot has `hub` NULL.
typedef struct green_debug_hub {
    void *hub;
    uint64_t id;
    uint64_t thread;
} green_debug_hub;

typedef struct green_debug_info {
    uint64_t magic;
    uint32_t version;
    /// sizeof(green_debug_info), and of the two layouts: a reader checks
    /// them against what it was written for.
    uint32_t size;
    uint32_t c_layout_size, swift_layout_size;
    uint32_t max_hubs;
    /// Hubs made while every slot was taken, so not listed.
    uint32_t hubs_dropped;
    /// 0: the Swift layout is not known yet (no hub was made); 1: known
    /// and checked against a live hub; -1: it did not check out (a reader
    /// must not trust it).
    int32_t swift_layout_state;
    /// 1 x86_64, 2 aarch64, 0 another CPU (no assembly switch).
    uint32_t arch;
    green_debug_c_layout c;
    green_debug_swift_layout swift;
    green_debug_hub hubs[GREEN_DEBUG_MAX_HUBS];
} green_debug_info;

/// Records the Swift layout (`verified`: it checked out against a live
/// hub). Every registration passes it again; the values never change.
void green_debug_set_swift_layout(const green_debug_swift_layout *layout, int verified);
/// Lists a hub (its object stays valid until it is unregistered).
void green_debug_register_hub(void *hub, uint64_t id, uint64_t thread);
/// Removes a hub from the list; nothing if it is not in it.
void green_debug_unregister_hub(void *hub);
/// Whether `hub` is listed, and the state of the Swift layout (see
/// `swift_layout_state`): for tests.
int green_debug_hub_listed(const void *hub);
int green_debug_swift_layout_state(void);

#ifdef __cplusplus
}
#endif

#endif
