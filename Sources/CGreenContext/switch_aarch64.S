// swift-green: the context switch for aarch64, AAPCS64.
//
// void green_switch_asm(void **save_sp /* x0 */, void *load_sp /* x1 */)
//
// Callee-saved state: x19-x28, the frame pointer x29, the link register
// x30, the low 64 bits of v8-v15 (d8-d15) and the FPCR control register.
// Frame on the suspended stack, 176 bytes (16-byte aligned):
//
//   +0  x19 x20   +16 x21 x22   +32 x23 x24   +48 x25 x26   +64 x27 x28
//   +80 x29 x30   +96 d8 d9     +112 d10 d11  +128 d12 d13  +144 d14 d15
//   +160 fpcr     +168 padding
//
// green_context_init builds the same frame on a fresh stack, with x30
// pointing at green_start_aarch64, x19 = argument and x20 = entry function.
#if defined(__aarch64__)
// The frame above, stored on the current stack and loaded from the one
// switched to: one definition for both switches.
.macro GREEN_SAVE_FRAME
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x9, fpcr
    str x9, [sp, #160]
.endm

.macro GREEN_RESTORE_FRAME
    ldr x9, [sp, #160]
    msr fpcr, x9
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
.endm

    .text
    .globl green_switch_asm
    .type green_switch_asm,%function
    .p2align 4
green_switch_asm:
    .cfi_startproc
    GREEN_SAVE_FRAME
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    GREEN_RESTORE_FRAME
    ret
    .cfi_endproc
    .size green_switch_asm,.-green_switch_asm

// void green_switch_via(void **save_sp /* x0 */, void *arg /* x1 */,
//                       void *(*fn)(void *) /* x2 */, void *scratch_top /* x3 */)
//
// Suspends the current context exactly as green_switch_asm does, then runs
// fn(arg) on the scratch stack (16-byte aligned top) and resumes the
// context whose saved stack pointer fn returns (see switch_x86_64.S).
    .globl green_switch_via
    .type green_switch_via,%function
    .p2align 4
green_switch_via:
    .cfi_startproc
    GREEN_SAVE_FRAME
    mov x9, sp
    str x9, [x0]
    mov sp, x3
    .cfi_undefined x30
    mov x0, x1
    blr x2
    mov sp, x0
    GREEN_RESTORE_FRAME
    ret
    .cfi_endproc
    .size green_switch_via,.-green_switch_via

// First frame of every new context, entered by `ret` with sp 16-byte
// aligned. x29 = 0 ends frame-pointer walks here.
    .globl green_start_aarch64
    .type green_start_aarch64,%function
    .p2align 4
green_start_aarch64:
    .cfi_startproc
    .cfi_undefined x30
    mov x29, #0
    mov x0, x19
    blr x20
    brk #0x1
    .cfi_endproc
    .size green_start_aarch64,.-green_start_aarch64
#endif
    .section .note.GNU-stack,"",%progbits
