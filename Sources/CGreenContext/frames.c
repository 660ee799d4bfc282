// swift-green: the registers a suspended context was switched out with,
// read from the frame the switch left on its stack (see the layouts at the
// top of switch_x86_64.S and switch_aarch64.S) or from its ucontext.
#define _GNU_SOURCE   // REG_RIP and the other register names of ucontext.h
#include "green_frames.h"
#include "green_compact.h"

#include <pthread.h>
#include <string.h>
#include <ucontext.h>

int green_thread_stack_bounds(uintptr_t *low, uintptr_t *high) {
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return -1;
    void *address = NULL;
    size_t size = 0;
    int rc = pthread_attr_getstack(&attr, &address, &size);
    pthread_attr_destroy(&attr);
    if (rc != 0 || address == NULL) return -1;
    *low = (uintptr_t)address;
    *high = (uintptr_t)address + size;
    return 0;
}

int green_frame_read(const green_frame_start *start, uintptr_t address, void *into, size_t size) {
    if (address < start->low || size > start->high - address) return -1;
    if (start->image != NULL && address >= start->image_base
        && address + size <= start->image_base + start->image_size) {
        memcpy(into, (const char *)start->image + (address - start->image_base), size);
        return 0;
    }
    if (start->image != NULL && address < start->image_base + start->image_size
        && address + size > start->image_base) {
        return -1;   // straddles the image's edge: not one stack
    }
    memcpy(into, (const void *)address, size);
    return 0;
}

static int read_word(const green_frame_start *start, uintptr_t address, uintptr_t *out) {
    return green_frame_read(start, address, out, sizeof *out);
}

int green_context_frame_start(const green_context *ctx, uintptr_t own_low, uintptr_t own_high,
                              green_frame_start *out) {
    memset(out, 0, sizeof *out);
    if (ctx->stack != NULL) {
        out->low = (uintptr_t)ctx->stack->base;
        out->high = (uintptr_t)ctx->stack->base + ctx->stack->size;
    } else if (ctx->shared != NULL) {
        out->low = (uintptr_t)ctx->shared->stack->base;
        out->high = (uintptr_t)ctx->shared->top;
    } else {
        if (own_low == 0 || own_high <= own_low) return -1;
        out->low = own_low;
        out->high = own_high;
    }
    if (ctx->kind == GREEN_CONTEXT_UCONTEXT) {
        const ucontext_t *uc = ctx->ucontext;
        if (uc == NULL) return -1;
#if defined(__x86_64__)
        out->pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
        out->sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
        out->fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
        out->pc = (uintptr_t)uc->uc_mcontext.pc;
        out->sp = (uintptr_t)uc->uc_mcontext.sp;
        out->fp = (uintptr_t)uc->uc_mcontext.regs[29];
#else
        return -1;
#endif
        out->end_pc = green_ucontext_entry_return();
        return out->pc != 0 ? 0 : -1;
    }
    uintptr_t sp = (uintptr_t)ctx->sp;
    if (sp == 0) return -1;
    if (ctx->shared != NULL && ctx->shared->owner != ctx && ctx->saved != NULL) {
        out->image = ctx->saved;
        out->image_base = sp;
        out->image_size = ctx->saved_size;
    }
#if defined(GREEN_SWITCH_FRAME_FP)
    if (read_word(out, sp + GREEN_SWITCH_FRAME_FP, &out->fp) != 0
        || read_word(out, sp + GREEN_SWITCH_FRAME_PC, &out->pc) != 0) return -1;
    out->sp = sp + GREEN_SWITCH_FRAME_SIZE;
#else
    return -1;
#endif
    return 0;
}

int green_frames_walk(const green_frame_start *start, uint64_t *out, int max) {
    int n = 0;
    if (max <= 0 || start->pc == 0) return 0;
    out[n++] = (uint64_t)(start->pc - 1);
    uintptr_t fp = start->fp;
    while (n < max && fp != 0 && (fp & (sizeof(uintptr_t) - 1)) == 0) {
        uintptr_t record[2];   // the caller's frame pointer, the return address
        if (green_frame_read(start, fp, record, sizeof record) != 0) break;
        if (record[1] == 0 || record[1] == start->end_pc) break;
        out[n++] = (uint64_t)(record[1] - 1);
        if (record[0] <= fp) break;   // frames move up the stack
        fp = record[0];
    }
    return n;
}

__attribute__((noinline))
int green_frames_here(uintptr_t low, uintptr_t high, uint64_t *out, int max) {
    green_frame_start start;
    memset(&start, 0, sizeof start);
    start.low = low;
    start.high = high;
    start.fp = (uintptr_t)__builtin_frame_address(1);
    start.pc = (uintptr_t)__builtin_return_address(0);
    return green_frames_walk(&start, out, max);
}
