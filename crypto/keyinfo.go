package crypto

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// KeyInfo is the metadata of one key-encryption key: its versions and when
// each was created, what still decrypts. It never holds key material.
// `kguard compliance report` shows it as PCI DSS 3.6/3.7 evidence.
type KeyInfo struct {
	Name     string `json:"name"`
	Provider string `json:"provider"` // "openbao-transit" or "local"
	Type     string `json:"type,omitempty"`
	// LatestVersion is the version new data keys are wrapped under.
	LatestVersion int `json:"latest_version"`
	// MinDecryptionVersion: versions below it are retired (no longer
	// decrypt). 0 or 1: every version decrypts.
	MinDecryptionVersion int          `json:"min_decryption_version,omitempty"`
	Versions             []KeyVersion `json:"versions"`
	// AutoRotatePeriod is the KMS's automatic rotation period (0: none).
	AutoRotatePeriod time.Duration `json:"auto_rotate_period,omitempty"`
	DeletionAllowed  bool          `json:"deletion_allowed,omitempty"`
	Exportable       bool          `json:"exportable,omitempty"`
}

// KeyVersion is one version of a key.
type KeyVersion struct {
	Version int `json:"version"`
	// Created is when the version was created (zero when the store does
	// not record it: the local key store).
	Created time.Time `json:"created,omitzero"`
}

// KeyInfo reads the transit key's metadata (transit/keys/:name). A missing
// key is an error wrapping ErrKeyNotFound.
func (t *TransitKMS) KeyInfo(ctx context.Context, name string) (KeyInfo, error) {
	ki := KeyInfo{Name: name, Provider: "openbao-transit"}
	if err := validTransitName(name); err != nil {
		return ki, err
	}
	sec, err := t.c.Logical().ReadWithContext(ctx, t.mount+"/keys/"+name)
	if err != nil {
		return ki, classify("transit read key", name, err)
	}
	if sec == nil || sec.Data == nil {
		return ki, fmt.Errorf("transit read key %q: %w", name, ErrKeyNotFound)
	}
	d := sec.Data
	ki.Type, _ = d["type"].(string)
	ki.LatestVersion = anyInt(d["latest_version"])
	ki.MinDecryptionVersion = anyInt(d["min_decryption_version"])
	ki.DeletionAllowed, _ = d["deletion_allowed"].(bool)
	ki.Exportable, _ = d["exportable"].(bool)
	ki.AutoRotatePeriod = time.Duration(anyInt(d["auto_rotate_period"])) * time.Second
	if keys, ok := d["keys"].(map[string]any); ok {
		for v, created := range keys {
			n, err := strconv.Atoi(v)
			if err != nil {
				continue
			}
			kv := KeyVersion{Version: n}
			switch c := created.(type) {
			case json.Number: // symmetric keys: unix seconds
				if s, err := c.Int64(); err == nil {
					kv.Created = time.Unix(s, 0).UTC()
				}
			case map[string]any: // asymmetric keys: {"creation_time": RFC 3339, ...}
				if s, ok := c["creation_time"].(string); ok {
					kv.Created, _ = time.Parse(time.RFC3339Nano, s)
					kv.Created = kv.Created.UTC()
				}
			}
			ki.Versions = append(ki.Versions, kv)
		}
	}
	sort.Slice(ki.Versions, func(i, j int) bool { return ki.Versions[i].Version < ki.Versions[j].Version })
	return ki, nil
}

func anyInt(v any) int {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}

// KeyInfo describes a KEK of the local store: one version per key of its
// AES-GCM keyset (the store records no creation dates). A missing KEK is
// an error wrapping ErrKeyNotFound.
func (k *LocalKMS) KeyInfo(_ context.Context, name string) (KeyInfo, error) {
	ki := KeyInfo{Name: name, Provider: "local", Type: "aes256-gcm (tink)"}
	k.mu.RLock()
	defer k.mu.RUnlock()
	lk := k.keks[name]
	if lk == nil {
		return ki, notFound(name)
	}
	n := len(lk.aeadH.KeysetInfo().GetKeyInfo())
	for v := 1; v <= n; v++ {
		ki.Versions = append(ki.Versions, KeyVersion{Version: v})
	}
	ki.LatestVersion, ki.MinDecryptionVersion = n, 1
	return ki, nil
}
