//go:build !amd64

package crypto

// hasStrSIMD: no vectorized string scan on this architecture; the word
// at a time scan of nextStrSpecial runs instead.
var hasStrSIMD = false

func strSpecialBlocks([]byte) int { return 0 }
