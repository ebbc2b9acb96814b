package proxy

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/proxy/wire"
)

// TestRegistryCoversKmsg: every API key kmsg knows has exactly one spec,
// at its own index, that decides it one way: answered by kguard (local),
// refused outright (refused), or decomposed for the policy; an API whose
// records flow through kguard has its own answer, where data protection
// attaches; and no spec stands for a key kmsg does not know. With
// TestAPIPinsReviewed (every version kmsg knows is within a reviewed pin),
// a franz-go upgrade that brings a new key or version fails here until it
// is given its numbered file and registry line.
func TestRegistryCoversKmsg(t *testing.T) {
	r := newRegistry()
	for key := int16(0); key <= wire.MaxAPIKey; key++ {
		s, known := r.spec(key), kmsg.RequestForKey(key) != nil
		switch {
		case !known && s != nil:
			t.Errorf("api key %d has a spec but kmsg does not know it", key)
			continue
		case !known:
			continue
		case s == nil:
			t.Errorf("kmsg knows %s (key %d) but the registry has no spec: add its numbered file and registry line", kmsg.NameForKey(key), key)
			continue
		}
		if s.key != key {
			t.Errorf("registry[%d] is the spec of key %d", key, s.key)
		}
		ways := 0
		for _, b := range []bool{s.local, s.refused != "", s.decompose != nil} {
			if b {
				ways++
			}
		}
		if ways != 1 {
			t.Errorf("%s (key %d): local=%v refused=%q decompose=%v: exactly one way to decide it", kmsg.NameForKey(key), key, s.local, s.refused, s.decompose != nil)
		}
		if s.records != noRecords && s.answer == nil {
			t.Errorf("%s (key %d): records flow %s but the API has no answer for data protection to attach to", kmsg.NameForKey(key), key, s.records)
		}
		if s.refused != "" && (s.answer != nil || s.filtered != nil || s.rewrite != nil || s.records != noRecords) {
			t.Errorf("%s (key %d) is refused but its spec says how to answer or relay it", kmsg.NameForKey(key), key)
		}
	}
	if r.spec(-1) != nil || r.spec(wire.MaxAPIKey+1) != nil {
		t.Error("a spec outside the key range")
	}
}
