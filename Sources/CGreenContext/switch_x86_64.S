// swift-green: the context switch for x86_64, System V ABI.
//
// void green_switch_asm(void **save_sp /* rdi */, void *load_sp /* rsi */)
//
// The caller has already saved every caller-saved register it needs (the
// ABI says so), so only the callee-saved ones travel: rbx, rbp, r12-r15,
// plus the two pieces of floating-point state the ABI also makes
// callee-saved: the MXCSR control bits and the x87 control word. The frame
// on the suspended stack, from the saved stack pointer upwards:
//
//   +0   MXCSR (4 bytes), x87 control word (2 bytes), padding
//   +8   r15   +16 r14   +24 r13   +32 r12   +40 rbx   +48 rbp
//   +56  return address
//
// green_context_init builds the same frame on a fresh stack, with the
// return address pointing at green_start_x86_64, r12 = argument and
// r13 = entry function.
#if defined(__x86_64__)
// The frame above, pushed on the current stack and popped from the one
// switched to: one definition for both switches.
.macro GREEN_SAVE_FRAME
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
.endm

.macro GREEN_RESTORE_FRAME
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
.endm

    .text
    .globl green_switch_asm
    .type green_switch_asm,@function
    .p2align 4
green_switch_asm:
    .cfi_startproc
    GREEN_SAVE_FRAME
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    GREEN_RESTORE_FRAME
    ret
    .cfi_endproc
    .size green_switch_asm,.-green_switch_asm

// void green_switch_via(void **save_sp /* rdi */, void *arg /* rsi */,
//                       void *(*fn)(void *) /* rdx */, void *scratch_top /* rcx */)
//
// Suspends the current context exactly as green_switch_asm does (same
// frame, stack pointer stored in *save_sp), then runs fn(arg) on the
// scratch stack (16-byte aligned top) and resumes the context whose saved
// stack pointer fn returns. Compact contexts switch through it: fn copies
// stack images while no context runs on the stacks it copies.
    .globl green_switch_via
    .type green_switch_via,@function
    .p2align 4
green_switch_via:
    .cfi_startproc
    GREEN_SAVE_FRAME
    movq %rsp, (%rdi)
    movq %rcx, %rsp
    .cfi_undefined rip
    movq %rsi, %rdi
    callq *%rdx
    movq %rax, %rsp
    GREEN_RESTORE_FRAME
    ret
    .cfi_endproc
    .size green_switch_via,.-green_switch_via

// First frame of every new context. Entered by `ret` from green_switch_asm
// with rsp 16-byte aligned (green_context_init arranges it), so the `call`
// below leaves the entry function with the alignment the ABI promises.
    .globl green_start_x86_64
    .type green_start_x86_64,@function
    .p2align 4
green_start_x86_64:
    .cfi_startproc
    .cfi_undefined rip
    xorl %ebp, %ebp
    movq %r12, %rdi
    callq *%r13
    // The entry function never returns; if it did, stop here loudly.
    ud2
    .cfi_endproc
    .size green_start_x86_64,.-green_start_x86_64
#endif
    .section .note.GNU-stack,"",@progbits
