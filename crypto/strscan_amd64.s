#include "textflag.h"

// func strSpecialBlocks(b []byte) int
//
// The index of the first '"', '\\' or byte below 0x20 in the whole 32-byte
// blocks of b (len(b) rounded down to 32), or that rounded length if there
// is none. AVX2: each block is compared with the two bytes and, for the
// control characters, with its unsigned minimum against 0x1f (a byte is at
// most 0x1f exactly when min(byte, 0x1f) equals it).
TEXT ·strSpecialBlocks(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	ANDQ $~31, CX
	XORQ AX, AX
	TESTQ CX, CX
	JZ   none
	MOVL $0x22, DX
	MOVQ DX, X1
	VPBROADCASTB X1, Y1
	MOVL $0x5c, DX
	MOVQ DX, X2
	VPBROADCASTB X2, Y2
	MOVL $0x1f, DX
	MOVQ DX, X3
	VPBROADCASTB X3, Y3

loop:
	VMOVDQU  (SI)(AX*1), Y0
	VPCMPEQB Y0, Y1, Y4
	VPCMPEQB Y0, Y2, Y5
	VPMINUB  Y0, Y3, Y6
	VPCMPEQB Y0, Y6, Y6
	VPOR     Y4, Y5, Y4
	VPOR     Y4, Y6, Y4
	VPMOVMSKB Y4, DX
	TESTL    DX, DX
	JNZ      found
	ADDQ     $32, AX
	CMPQ     AX, CX
	JB       loop
	VZEROUPPER

none:
	MOVQ CX, ret+24(FP)
	RET

found:
	VZEROUPPER
	BSFL DX, DX
	ADDQ DX, AX
	MOVQ AX, ret+24(FP)
	RET
