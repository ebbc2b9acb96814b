package crypto

import "golang.org/x/sys/cpu"

// strSpecialBlocks returns the index of the first '"', '\\' or control
// character in the whole 32-byte blocks of b, or len(b) rounded down to
// 32 if there is none (strscan_amd64.s). Only called when hasAVX2.
//
//go:noescape
func strSpecialBlocks(b []byte) int

// classify64 sets m to the masks of the bytes skipContainer looks at in
// p[0:64], one bit per byte: '"', '\\', opening and closing brackets,
// control characters (strscan_amd64.s). Only called when hasAVX2.
//
//go:noescape
func classify64(p *byte, m *[5]uint64)

// hasAVX2: the vectorized scans (strSpecialBlocks, classify64) may run.
var hasAVX2 = cpu.X86.HasAVX2
