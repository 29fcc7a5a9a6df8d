#include "textflag.h"

// reportSIGSYS is the SIGSYS handler, entered by the kernel with the C
// ABI: DI the signal, SI the siginfo, DX the context. For a seccomp trap
// the siginfo's si_syscall (offset 24) is the forbidden call's number.
// It writes that call's prepared line to fd 2 and exits the process.
TEXT ·reportSIGSYS(SB),NOSPLIT|NOFRAME,$0
	MOVL	24(SI), AX
	CMPQ	AX, $512 // maxNr
	JB	known
	MOVQ	$512, AX
known:
	SHLQ	$4, AX // sizeof(message)
	LEAQ	·messages(SB), R8
	ADDQ	AX, R8
	MOVQ	$1, AX // SYS_write
	MOVQ	$2, DI
	MOVQ	0(R8), SI
	MOVQ	8(R8), DX
	SYSCALL
	MOVQ	$231, AX // SYS_exit_group
	MOVQ	·exitStatus(SB), DI
	SYSCALL
	INT	$3

// restore returns from a signal handler (rt_sigreturn); x86-64 requires
// one with SA_RESTORER, though reportSIGSYS never returns.
TEXT ·restore(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$15, AX // SYS_rt_sigreturn
	SYSCALL
	INT	$3

TEXT ·sigsysPC(SB),NOSPLIT,$0-8
	LEAQ	·reportSIGSYS(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

TEXT ·restorePC(SB),NOSPLIT,$0-8
	LEAQ	·restore(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
