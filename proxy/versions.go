package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/proxy/wire"
)

// versionRange is the set of versions of one api key kguard accepts.
type versionRange struct {
	min, max int16
	ok       bool
}

// supported is what kguard accepts from clients on one connection: the
// intersection of what its upstream broker advertises, what kguard can
// parse (kmsg's versions) and kguard's reviewed pins (apiSpec.pin), minus the
// keys the pins leave out.
type supported [wire.MaxAPIKey + 1]versionRange

// intersect builds the supported set from the upstream's ApiVersions. A key
// or version outside the pins is never advertised, so a newer kmsg cannot
// widen what kguard forwards. The SASL requests are kguard's own (it
// terminates client authentication), so when the listener has SASL their
// ranges are kguard's pins, whatever the upstream says: SaslHandshake v0-1
// (v0: raw tokens follow, KIP-43), SaslAuthenticate v0-2.
func (r *registry) intersect(up *kmsg.ApiVersionsResponse, sasl bool) *supported {
	return r.pins().intersect(up, sasl)
}

func (pins pinTable) intersect(up *kmsg.ApiVersionsResponse, sasl bool) *supported {
	var s supported
	for _, k := range up.ApiKeys {
		if k.ApiKey < 0 || k.ApiKey > wire.MaxAPIKey {
			continue
		}
		if r, ok := pins.bound(k.ApiKey, k.MinVersion, k.MaxVersion); ok {
			s[k.ApiKey] = r
		}
	}
	s[17], s[36] = versionRange{}, versionRange{}
	if sasl {
		s[17], _ = pins.bound(17, 0, wire.KmsgMaxVersion(17))
		s[36], _ = pins.bound(36, 0, wire.KmsgMaxVersion(36))
	}
	return &s
}

// bound intersects lo-hi with kmsg's versions and the key's pin. A key
// without a pin, or one the pins leave out, is not supported.
func (pins pinTable) bound(key, lo, hi int16) (versionRange, bool) {
	pin, ok := pins[key]
	if !ok || pin.omit {
		return versionRange{}, false
	}
	hi = min(hi, pin.max, wire.KmsgMaxVersion(key))
	lo = max(lo, pin.min)
	if lo > hi {
		return versionRange{}, false
	}
	return versionRange{min: lo, max: hi, ok: true}, true
}

func (s *supported) allows(key, version int16) bool {
	if key < 0 || key > wire.MaxAPIKey {
		return false
	}
	r := s[key]
	return r.ok && version >= r.min && version <= r.max
}

// apiVersionsResponse answers a client's ApiVersions request at version v
// with kguard's intersection, keeping the upstream's feature information
// (clients such as the Java producer read finalized features).
func apiVersionsResponse(s *supported, up *kmsg.ApiVersionsResponse, v int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	own := s[18]
	if v > own.max || !own.ok {
		// KIP-511: answer an unsupported version with v0 and our
		// ApiVersions range so the client can retry lower.
		resp.SetVersion(0)
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = 18, own.min, own.max
		resp.ApiKeys = append(resp.ApiKeys, k)
		return resp
	}
	resp.SetVersion(v)
	for key, r := range s {
		if !r.ok {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = int16(key), r.min, r.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	resp.SupportedFeatures = up.SupportedFeatures
	resp.FinalizedFeaturesEpoch = up.FinalizedFeaturesEpoch
	resp.FinalizedFeatures = up.FinalizedFeatures
	resp.ZkMigrationReady = up.ZkMigrationReady
	return resp
}
