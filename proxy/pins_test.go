package proxy

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/proxy/wire"
)

// Every api key kmsg knows is in the pin table, and no key has a version
// newer than the one reviewed: upgrading franz-go fails this test until
// someone reads what the new versions carry and raises the pin (or keeps it
// below on purpose by raising only reviewed).
func TestAPIPinsReviewed(t *testing.T) {
	for key := int16(0); key <= wire.MaxAPIKey; key++ {
		km := wire.KmsgMaxVersion(key)
		pin, ok := newRegistry().pins()[key]
		switch {
		case km < 0 && ok:
			t.Errorf("api key %d is pinned (%s) but kmsg does not know it", key, pin.note)
		case km < 0:
		case !ok:
			t.Errorf("kmsg knows api key %d (%s) up to v%d, which the pin table does not list: review it and add its numbered file and registry line (allowed, refused or omit)",
				key, kmsg.NameForKey(key), km)
		case km > pin.reviewed:
			t.Errorf("kmsg knows %s (key %d) up to v%d, the pin was reviewed up to v%d: read what the new versions add, check the decomposer reads every field that names a resource, then raise the pin",
				kmsg.NameForKey(key), key, km, pin.reviewed)
		}
		if !ok {
			continue
		}
		if pin.min < 0 || pin.min > pin.max || pin.max > pin.reviewed {
			t.Errorf("key %d: pin %d-%d reviewed %d is not ordered", key, pin.min, pin.max, pin.reviewed)
		}
		if pin.note == "" {
			t.Errorf("key %d: pin has no note", key)
		}
	}
}

// everything is an upstream that advertises every key at every version.
func everything() *kmsg.ApiVersionsResponse {
	up := kmsg.NewPtrApiVersionsResponse()
	for key := int16(0); key <= wire.MaxAPIKey; key++ {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, 0, 32767
		up.ApiKeys = append(up.ApiKeys, k)
	}
	return up
}

// Whatever the upstream offers, kguard advertises at most its pins: keys
// left out (controller endpoints, the streams topology) never, others up to
// their pin.
func TestAPIPinsBoundAdvertised(t *testing.T) {
	s := newRegistry().intersect(everything(), true)
	for key := int16(0); key <= wire.MaxAPIKey; key++ {
		pin, pinned := newRegistry().pins()[key]
		r := s[key]
		if !pinned || pin.omit {
			if r.ok {
				t.Errorf("key %d (%s) advertised v%d-%d, the pins leave it out", key, kmsg.NameForKey(key), r.min, r.max)
			}
			continue
		}
		if !r.ok || r.max != min(pin.max, wire.KmsgMaxVersion(key)) || r.min != pin.min {
			t.Errorf("key %d (%s): advertised %+v, want v%d-%d", key, kmsg.NameForKey(key), r, pin.min, pin.max)
		}
	}
	for _, key := range []int16{55, 80, 81, 82} {
		if s[key].ok {
			t.Errorf("key %d (%s) advertised", key, kmsg.NameForKey(key))
		}
	}
}

// A pin below what kmsg and the broker know caps what is advertised and
// accepted: the situation after a franz-go upgrade the table was not
// reviewed for.
func TestAPIPinCapsNewerVersions(t *testing.T) {
	pins := pinTable{}
	for k, v := range newRegistry().pins() {
		pins[k] = v
	}
	fetch := pins[1]
	fetch.max = 12
	pins[1] = fetch
	delete(pins, 3) // a key the table does not list
	s := pins.intersect(everything(), false)
	if r := s[1]; !r.ok || r.max != 12 {
		t.Fatalf("Fetch advertised %+v, want up to v12", r)
	}
	if s.allows(1, 13) || !s.allows(1, 12) {
		t.Fatal("Fetch v13 allowed above its pin, or v12 refused")
	}
	if s[3].ok || s.allows(3, 0) {
		t.Fatal("an api key without a pin is advertised")
	}
	if s[17].ok || s[36].ok {
		t.Fatal("SASL keys advertised on a listener without SASL")
	}
	// Below the pin's minimum.
	fetch.min, fetch.max = 4, 12
	pins[1] = fetch
	if s := pins.intersect(everything(), false); s.allows(1, 3) || !s.allows(1, 4) {
		t.Fatalf("Fetch range %+v, want v4-12", s[1])
	}
}
