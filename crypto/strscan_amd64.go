package crypto

import "golang.org/x/sys/cpu"

// strSpecialBlocks returns the index of the first '"', '\\' or control
// character in the whole 32-byte blocks of b, or len(b) rounded down to
// 32 if there is none (strscan_amd64.s). Only called when hasStrSIMD.
//
//go:noescape
func strSpecialBlocks(b []byte) int

// hasStrSIMD: strSpecialBlocks may run (it uses AVX2).
var hasStrSIMD = cpu.X86.HasAVX2
