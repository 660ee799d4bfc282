// swift-green: where a suspended context stands, for backtraces of parked
// greenlets (frames.c). Read only from the context's own hub thread, or
// from a stopped process (gdb reads the same fields itself): nothing here
// runs on, or adds anything to, the switch path.
#ifndef SWIFT_GREEN_FRAMES_H
#define SWIFT_GREEN_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "green_context.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Where an assembly context's registers are, from its saved `sp` (the
/// frames at the top of switch_x86_64.S and switch_aarch64.S): its frame
/// pointer, the return address into the code that switched away, and the
/// frame's size (the stack pointer once the switch has returned). Also
/// told to debuggers (green_debug.h).
#if defined(__x86_64__)
#define GREEN_SWITCH_FRAME_FP 48
#define GREEN_SWITCH_FRAME_PC 56
#define GREEN_SWITCH_FRAME_SIZE 64
#elif defined(__aarch64__)
#define GREEN_SWITCH_FRAME_FP 80
#define GREEN_SWITCH_FRAME_PC 88
#define GREEN_SWITCH_FRAME_SIZE 176
#endif

/// The registers an unwinder starts from, and the memory it may read.
typedef struct green_frame_start {
    /// Program counter (the return address into the code that switched
    /// away), frame pointer and stack pointer after the switch returns.
    uintptr_t pc, fp, sp;
    /// The stack's bounds: reads outside [low, high) are refused.
    uintptr_t low, high;
    /// A compact context whose stack is on the heap: its image, which
    /// stands for the addresses [image_base, image_base + image_size).
    const void *image;
    uintptr_t image_base;
    size_t image_size;
    /// A return address that ends the walk, not listed (0: none): where a
    /// ucontext context's first frame returns to, the C library's start
    /// of a context, below the runtime's entry.
    uintptr_t end_pc;
} green_frame_start;

/// The return address makecontext gives a ucontext context's first frame
/// (0 until a ucontext context was made).
uintptr_t green_ucontext_entry_return(void);

/// Fills `out` for a suspended context; 0 on success, -1 if it cannot be
/// told (never switched out, or a thread's own stack whose bounds are not
/// known). `own_low`/`own_high`: the bounds of the calling thread's own
/// stack, used for a context without a green_stack (a thread's main
/// greenlet).
int green_context_frame_start(const green_context *ctx, uintptr_t own_low, uintptr_t own_high,
                              green_frame_start *out);

/// The calling thread's own stack, [*low, *high); 0 on success.
int green_thread_stack_bounds(uintptr_t *low, uintptr_t *high);

/// Copies `size` bytes at `address` as the context described by `start`
/// sees them into `into`; 0 on success, -1 if any byte is outside the
/// stack.
int green_frame_read(const green_frame_start *start, uintptr_t address, void *into, size_t size);

/// Walks the frame-pointer chain from `start` (Swift and C code built with
/// frame pointers, as Swift's on Linux is), writing up to `max` code
/// addresses, innermost first, each inside its call (a return address
/// less one). Stops at a null or misaligned frame pointer, one that does
/// not move up the stack, or one outside the stack. Returns the count.
int green_frames_walk(const green_frame_start *start, uint64_t *out, int max);

/// The same from the caller of this function, on a stack [low, high).
int green_frames_here(uintptr_t low, uintptr_t high, uint64_t *out, int max);

#ifdef __cplusplus
}
#endif

#endif
