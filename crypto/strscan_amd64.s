#include "textflag.h"

// BCAST sets every byte of ymm to the constant v (through DX and xmm).
#define BCAST(v, xmm, ymm) MOVL $v, DX; MOVQ DX, xmm; VPBROADCASTB xmm, ymm

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
	BCAST(0x22, X1, Y1)
	BCAST(0x5c, X2, Y2)
	BCAST(0x1f, X3, Y3)

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

// func classify64(p *byte, m *[5]uint64)
//
// The bytes of p[0:64] that skipContainer looks at, one bit per byte
// (bit i for p[i]): m[0] '"', m[1] '\\', m[2] '{' or '[', m[3] '}' or ']',
// m[4] below 0x20. Brackets: b|0x20 maps '[' to '{' and ']' to '}', and no
// other byte to either.
TEXT ·classify64(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ m+8(FP), DI
	BCAST(0x22, X1, Y1)
	BCAST(0x5c, X2, Y2)
	BCAST(0x1f, X3, Y3)
	BCAST(0x20, X8, Y8)
	BCAST(0x7b, X9, Y9)
	BCAST(0x7d, X10, Y10)
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y7

	VPCMPEQB  Y0, Y1, Y4
	VPMOVMSKB Y4, AX
	VPCMPEQB  Y7, Y1, Y4
	VPMOVMSKB Y4, DX
	SHLQ      $32, DX
	ORQ       DX, AX
	MOVQ      AX, 0(DI)

	VPCMPEQB  Y0, Y2, Y4
	VPMOVMSKB Y4, AX
	VPCMPEQB  Y7, Y2, Y4
	VPMOVMSKB Y4, DX
	SHLQ      $32, DX
	ORQ       DX, AX
	MOVQ      AX, 8(DI)

	VPOR      Y0, Y8, Y5
	VPOR      Y7, Y8, Y6
	VPCMPEQB  Y5, Y9, Y4
	VPMOVMSKB Y4, AX
	VPCMPEQB  Y6, Y9, Y4
	VPMOVMSKB Y4, DX
	SHLQ      $32, DX
	ORQ       DX, AX
	MOVQ      AX, 16(DI)

	VPCMPEQB  Y5, Y10, Y4
	VPMOVMSKB Y4, AX
	VPCMPEQB  Y6, Y10, Y4
	VPMOVMSKB Y4, DX
	SHLQ      $32, DX
	ORQ       DX, AX
	MOVQ      AX, 24(DI)

	VPMINUB   Y0, Y3, Y4
	VPCMPEQB  Y0, Y4, Y4
	VPMOVMSKB Y4, AX
	VPMINUB   Y7, Y3, Y4
	VPCMPEQB  Y7, Y4, Y4
	VPMOVMSKB Y4, DX
	SHLQ      $32, DX
	ORQ       DX, AX
	MOVQ      AX, 32(DI)

	VZEROUPPER
	RET
