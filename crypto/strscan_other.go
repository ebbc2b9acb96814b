//go:build !amd64

package crypto

// hasAVX2: no vectorized scans on this architecture; the word at a time
// ones of nextStrSpecial and skipContainer run instead.
var hasAVX2 = false

func strSpecialBlocks([]byte) int { return 0 }

func classify64(*byte, *[5]uint64) {}
