package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
)

// aesSIV is AES-SIV (RFC 5297) with a 512-bit key, one associated-data
// component and the plaintext, exactly as Tink's DeterministicAEAD
// computes it (key[:32] for S2V/CMAC, key[32:] for CTR). Unlike Tink's
// subtle implementation it expands both AES keys once per data key and
// precomputes the CMAC subkeys and S2V's first block, so a field costs the
// AES calls and no allocation beyond the CTR stream. TestPrimitivesMatchTink
// checks that it produces Tink's ciphertexts byte for byte.
type aesSIV struct {
	mac, ctr   cipher.Block
	sub1, sub2 [16]byte // CMAC subkeys
	d0         [16]byte // dbl(CMAC(0^128)), the start of S2V
}

func newAESSIV(key []byte) (*aesSIV, error) {
	if len(key) != 64 {
		return nil, errors.New("AES-SIV needs a 64-byte key")
	}
	mac, err := aes.NewCipher(key[:32])
	if err != nil {
		return nil, err
	}
	ctr, err := aes.NewCipher(key[32:])
	if err != nil {
		return nil, err
	}
	s := &aesSIV{mac: mac, ctr: ctr}
	var l [16]byte
	mac.Encrypt(l[:], l[:])
	s.sub1 = dbl(l)
	s.sub2 = dbl(s.sub1)
	var zero [16]byte
	s.d0 = dbl(s.cmac(zero[:], nil))
	return s, nil
}

// dbl multiplies by x in GF(2^128) (RFC 5297 section 2.3).
func dbl(b [16]byte) [16]byte {
	var out [16]byte
	carry := b[0] >> 7
	for i := 0; i < 15; i++ {
		out[i] = b[i]<<1 | b[i+1]>>7
	}
	out[15] = b[15]<<1 ^ (0x87 & -carry)
	return out
}

// cmac is AES-CMAC (RFC 4493) of msg, with the last 16 bytes of msg XORed
// with xe when xe is not nil (S2V's "xorend"; then len(msg) >= 16).
func (s *aesSIV) cmac(msg []byte, xe *[16]byte) [16]byte {
	n := len(msg)
	nb := (n + 15) / 16
	if nb == 0 {
		nb = 1
	}
	var x, blk [16]byte
	for i := 0; i < nb; i++ {
		lo := 16 * i
		hi := min(lo+16, n)
		blk = [16]byte{}
		copy(blk[:], msg[lo:hi])
		if xe != nil && hi > n-16 {
			for p := max(lo, n-16); p < hi; p++ {
				blk[p-lo] ^= xe[p-(n-16)]
			}
		}
		if i == nb-1 {
			if n > 0 && n%16 == 0 {
				subtle.XORBytes(blk[:], blk[:], s.sub1[:])
			} else {
				blk[hi-lo] ^= 0x80
				subtle.XORBytes(blk[:], blk[:], s.sub2[:])
			}
		}
		subtle.XORBytes(x[:], x[:], blk[:])
		s.mac.Encrypt(x[:], x[:])
	}
	return x
}

// s2v is RFC 5297's S2V over (ad, pt).
func (s *aesSIV) s2v(pt, ad []byte) [16]byte {
	d := s.d0
	m := s.cmac(ad, nil)
	subtle.XORBytes(d[:], d[:], m[:])
	if len(pt) >= 16 {
		return s.cmac(pt, &d)
	}
	t := dbl(d)
	subtle.XORBytes(t[:len(pt)], t[:len(pt)], pt)
	t[len(pt)] ^= 0x80
	return s.cmac(t[:], nil)
}

func (s *aesSIV) xorCTR(v [16]byte, dst, src []byte) {
	v[8] &= 0x7f
	v[12] &= 0x7f
	cipher.NewCTR(s.ctr, v[:]).XORKeyStream(dst, src)
}

// sealAppend appends SIV || ciphertext to dst.
func (s *aesSIV) sealAppend(dst, pt, ad []byte) []byte {
	v := s.s2v(pt, ad)
	dst = append(dst, v[:]...)
	n := len(dst)
	dst = append(dst, make([]byte, len(pt))...)
	s.xorCTR(v, dst[n:], pt)
	return dst
}

// openAppend appends the plaintext of SIV || ciphertext to dst.
func (s *aesSIV) openAppend(dst, ct, ad []byte) ([]byte, error) {
	if len(ct) < 16 {
		return nil, errors.New("ciphertext too short")
	}
	v := [16]byte(ct[:16])
	n := len(dst)
	dst = append(dst, make([]byte, len(ct)-16)...)
	pt := dst[n:]
	s.xorCTR(v, pt, ct[16:])
	if w := s.s2v(pt, ad); subtle.ConstantTimeCompare(w[:], v[:]) != 1 {
		clear(pt)
		return nil, errors.New("AES-SIV ciphertext does not authenticate")
	}
	return dst, nil
}
