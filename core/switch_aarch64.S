/* SPDX-License-Identifier: MIT */
/*
 * Task context switch for aarch64 (AAPCS64).
 *
 * void sl__ctx_switch(struct sl__ctx *from, struct sl__ctx *to)
 *
 * Saves x19-x28, the frame pointer x29, the link register x30 and the low
 * halves of v8-v15 (d8-d15), which AAPCS64 makes callee-saved, in a 160-byte
 * frame on the current stack; stores sp in from->sp; loads to->sp and
 * restores the same frame from there.  FPCR is not switched, for the reason
 * given in switch_x86_64.S.
 *
 * A new task's frame is laid out by sl__ctx_init() so that the first switch
 * returns (through x30) into sl__task_entry with the task pointer in x19.
 */
	.text
	.globl	sl__ctx_switch
	.type	sl__ctx_switch, %function
	.p2align 4
sl__ctx_switch:
	sub	sp, sp, #160
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mov	x2, sp
	str	x2, [x0]
	ldr	x2, [x1]
	mov	sp, x2
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #160
	ret
	.size	sl__ctx_switch, .-sl__ctx_switch

	.globl	sl__task_entry
	.type	sl__task_entry, %function
	.p2align 4
sl__task_entry:
	mov	x0, x19
	bl	sl__task_start
	brk	#0
	.size	sl__task_entry, .-sl__task_entry

	.section .note.GNU-stack,"",%progbits
