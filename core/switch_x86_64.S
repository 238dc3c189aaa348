/* SPDX-License-Identifier: MIT */
/*
 * Task context switch for x86-64 (System V ABI).
 *
 * void sl__ctx_switch(struct sl__ctx *from, struct sl__ctx *to)
 *
 * Saves the callee-saved registers on the current stack, stores the stack
 * pointer in from->sp, loads to->sp and pops the same registers from there.
 * Caller-saved registers need no saving: the compiler already assumes a
 * call clobbers them.  The x87 control word and MXCSR are also callee-saved
 * by the ABI but are not switched: tasks must not change rounding modes or
 * exception masks (docs/architecture.md), which saves a slow fldcw here.
 * No signal mask is switched either, so no system call is made.
 *
 * A new task's stack is laid out by sl__ctx_init() so that the first switch
 * to it "returns" into sl__task_entry with the task pointer in %r12.
 */
	.text
	.globl	sl__ctx_switch
	.type	sl__ctx_switch, @function
	.p2align 4
sl__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	sl__ctx_switch, .-sl__ctx_switch

/*
 * First code a task runs.  %rsp is 16-byte aligned here, so the call below
 * enters sl__task_start() with the alignment the ABI requires.  The task
 * never returns through this frame: sl__task_start() switches away for good.
 */
	.globl	sl__task_entry
	.type	sl__task_entry, @function
	.p2align 4
sl__task_entry:
	.cfi_startproc
	.cfi_undefined rip
	movq	%r12, %rdi
	call	sl__task_start
	ud2
	.cfi_endproc
	.size	sl__task_entry, .-sl__task_entry

	.section .note.GNU-stack,"",@progbits
