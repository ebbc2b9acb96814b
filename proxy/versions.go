package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/proxy/wire"
)

// neverAdvertised are api keys kguard does not offer clients even when the
// upstream does, because their responses carry addresses kguard cannot proxy
// (controller quorum endpoints) or they only make sense between brokers.
var neverAdvertised = map[int16]string{
	55: "DescribeQuorum returns controller endpoints",
	80: "AddRaftVoter carries controller endpoints",
	81: "RemoveRaftVoter is a controller quorum operation",
	82: "UpdateRaftVoter carries controller endpoints",
}

// versionRange is the set of versions of one api key kguard accepts.
type versionRange struct {
	min, max int16
	ok       bool
}

// supported is what kguard accepts from clients on one connection: the
// intersection of what its upstream broker advertises and what kguard can
// parse (kmsg's versions), minus never-advertised keys.
type supported [wire.MaxAPIKey + 1]versionRange

// intersect builds the supported set from the upstream's ApiVersions. The
// SASL requests are kguard's own (it terminates client authentication), so
// when the listener has SASL their ranges are kguard's, whatever the
// upstream says: SaslHandshake v0-1 (v0: raw tokens follow, KIP-43),
// SaslAuthenticate v0-2.
func intersect(up *kmsg.ApiVersionsResponse, sasl bool) *supported {
	var s supported
	for _, k := range up.ApiKeys {
		if k.ApiKey < 0 || k.ApiKey > wire.MaxAPIKey {
			continue
		}
		if _, no := neverAdvertised[k.ApiKey]; no {
			continue
		}
		km := wire.KmsgMaxVersion(k.ApiKey)
		if km < 0 {
			continue // a key newer than kguard: not advertised
		}
		hi := min(k.MaxVersion, km)
		if k.MinVersion > hi {
			continue
		}
		s[k.ApiKey] = versionRange{min: k.MinVersion, max: hi, ok: true}
	}
	s[17], s[36] = versionRange{}, versionRange{}
	if sasl {
		s[17] = versionRange{min: 0, max: min(1, wire.KmsgMaxVersion(17)), ok: true}
		s[36] = versionRange{min: 0, max: min(2, wire.KmsgMaxVersion(36)), ok: true}
	}
	return &s
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
