package crypto

import (
	"context"
	"strconv"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
)

// SignRawForTest signs msg with key tinkID of the keyset file at path (a
// Tink signature, prefix included), whether or not it is the primary.
func SignRawForTest(path, tinkID string, msg []byte) ([]byte, error) {
	h, err := readKeysetFile(path, nil)
	if err != nil {
		return nil, err
	}
	id, err := strconv.ParseUint(tinkID, 10, 32)
	if err != nil {
		return nil, err
	}
	m := keyset.NewManagerFromHandle(h)
	if err := m.SetPrimary(uint32(id)); err != nil {
		return nil, err
	}
	if h, err = m.Handle(); err != nil {
		return nil, err
	}
	s, err := signature.NewSigner(h)
	if err != nil {
		return nil, err
	}
	return s.Sign(msg)
}

// RunTrustStoreForTest is Run with a callback after each reload attempt.
func RunTrustStoreForTest(ctx context.Context, s *TrustStore, onReload func(error)) error {
	return s.run(ctx, onReload)
}
