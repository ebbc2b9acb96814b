// AlterConfigs (api key 33), versions 0-2.
//
//   v0-v1    resources by type and name with their full config set, ValidateOnly
//   v2       flexible versions
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// AlterConfigs: per resource.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func alterConfigsAPI() apiSpec {
	return apiSpec{
		key:       33,
		rename:    renameAlterConfigs(),
		pin:       apiPin{0, 2, 2, false, "AlterConfigs: per resource"},
		decompose: decomposes(decomposeAlterConfigs),
		answer:    answers((*authzCall).alterConfigs),
		cache:     neverCache,
	}
}

func (c *authzCall) alterConfigs(r *kmsg.AlterConfigsRequest) (*pending, []byte, error) {
	types, names := make([]kmsg.ConfigResourceType, len(r.Resources)), make([]string, len(r.Resources))
	for i, res := range r.Resources {
		types[i], names[i] = res.ResourceType, res.ResourceName
	}
	codes, msgs, denied, anyAllowed := c.configDecisions(policy.AlterConfigs, types, names)
	mk := func(i int) kmsg.AlterConfigsResponseResource {
		res := kmsg.NewAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName, res.ErrorCode, res.ErrorMessage = types[i], names[i], codes[i], msgs[i]
		return res
	}
	return perEntryAnswer(c, len(types), denied, anyAllowed, mk,
		func(i int) string { return configKey(types[i], names[i]) }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.AlterConfigsResponseResource {
			return &kr.(*kmsg.AlterConfigsResponse).Resources
		},
		func(res *kmsg.AlterConfigsResponseResource) string {
			return configKey(res.ResourceType, res.ResourceName)
		},
		func() kmsg.Request { fwd := *r; fwd.Resources = keep(r.Resources, denied); return &fwd })
}

// alterConfigs: AlterConfigs per resource; details "resources": type, name,
// configs (name -> value, the full replacement set), ops.
func decomposeAlterConfigs(d decomposer, r *kmsg.AlterConfigsRequest) ([]policy.Action, map[string]any, error) {
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
			cfg[c.Name] = v
			ops = append(ops, map[string]any{"name": c.Name, "op": "SET", "value": v})
		}
		res = append(res, map[string]any{
			"type": configResourceName(rr.ResourceType), "name": rr.ResourceName,
			"configs": cfg, "ops": ops, "incremental": false,
		})
	}
	return actions, map[string]any{"resources": res, "validate_only": r.ValidateOnly}, nil
}
