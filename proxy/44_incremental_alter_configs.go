// IncrementalAlterConfigs (api key 44), versions 0-1.
//
//   v0       resources by type and name, per-config SET/DELETE/APPEND/SUBTRACT (KIP-339),
//            ValidateOnly
//   v1       flexible versions
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// IncrementalAlterConfigs: per resource.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func incrementalAlterConfigsAPI() apiSpec {
	return apiSpec{
		key:       44,
		rename:    renameIncrementalAlterConfigs(),
		pin:       apiPin{0, 1, 1, false, "IncrementalAlterConfigs: per resource"},
		decompose: decomposes(decomposeIncrementalAlterConfigs),
		answer:    answers((*authzCall).incrementalAlterConfigs),
		cache:     neverCache,
	}
}

func (c *authzCall) incrementalAlterConfigs(r *kmsg.IncrementalAlterConfigsRequest) (*pending, []byte, error) {
	types, names := make([]kmsg.ConfigResourceType, len(r.Resources)), make([]string, len(r.Resources))
	for i, res := range r.Resources {
		types[i], names[i] = res.ResourceType, res.ResourceName
	}
	codes, msgs, denied, anyAllowed := c.configDecisions(policy.AlterConfigs, types, names)
	mk := func(i int) kmsg.IncrementalAlterConfigsResponseResource {
		res := kmsg.NewIncrementalAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName, res.ErrorCode, res.ErrorMessage = types[i], names[i], codes[i], msgs[i]
		return res
	}
	return perEntryAnswer(c, len(types), denied, anyAllowed, mk,
		func(i int) string { return configKey(types[i], names[i]) }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.IncrementalAlterConfigsResponseResource {
			return &kr.(*kmsg.IncrementalAlterConfigsResponse).Resources
		},
		func(res *kmsg.IncrementalAlterConfigsResponseResource) string {
			return configKey(res.ResourceType, res.ResourceName)
		},
		func() kmsg.Request { fwd := *r; fwd.Resources = keep(r.Resources, denied); return &fwd })
}

// incrementalAlterConfigs: as alterConfigs; "configs" holds the values SET
// and the APPEND operands (the safeguards check what is added to a list),
// "ops" every operation in order (DELETE and SUBTRACT are judged from ops).
func decomposeIncrementalAlterConfigs(d decomposer, r *kmsg.IncrementalAlterConfigsRequest) ([]policy.Action, map[string]any, error) {
	actions := make([]policy.Action, 0, len(r.Resources))
	res := make([]any, 0, len(r.Resources))
	for _, rr := range r.Resources {
		actions = append(actions, configAction(rr.ResourceType, rr.ResourceName, policy.AlterConfigs))
		cfg := make(map[string]any, len(rr.Configs))
		ops := make([]any, 0, len(rr.Configs))
		for _, c := range rr.Configs {
			var v any
			if c.Value != nil {
				v = *c.Value
			}
			if c.Op == kmsg.IncrementalAlterConfigOpSet || c.Op == kmsg.IncrementalAlterConfigOpAppend {
				cfg[c.Name] = v
			}
			ops = append(ops, map[string]any{"name": c.Name, "op": c.Op.String(), "value": v})
		}
		res = append(res, map[string]any{
			"type": configResourceName(rr.ResourceType), "name": rr.ResourceName,
			"configs": cfg, "ops": ops, "incremental": true,
		})
	}
	return actions, map[string]any{"resources": res, "validate_only": r.ValidateOnly}, nil
}
