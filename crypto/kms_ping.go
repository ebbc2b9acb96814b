package crypto

import (
	"context"
	"fmt"
)

// Pinger is a key service that can be checked without touching any key:
// readiness probes and the KMS metrics call it periodically.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Ping implements Pinger with OpenBao/Vault's unauthenticated
// sys/health: it fails when the server cannot be reached, is sealed or
// is not initialized.
func (t *TransitKMS) Ping(ctx context.Context) error {
	h, err := t.c.Sys().HealthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("transit health: %w: %w", ErrUnavailable, err)
	}
	if !h.Initialized || h.Sealed {
		return fmt.Errorf("transit health: %w: initialized=%v sealed=%v", ErrUnavailable, h.Initialized, h.Sealed)
	}
	return nil
}

// Ping implements Pinger: the local key store is a file kguard holds in
// memory, always available.
func (k *LocalKMS) Ping(context.Context) error { return nil }
