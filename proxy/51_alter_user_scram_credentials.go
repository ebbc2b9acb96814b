// AlterUserSCRAMCredentials (api key 51), version 0.
//
//   v0       deletions and upsertions (salted passwords) per user (KIP-554); flexible from v0
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// AlterUserScramCredentials: Alter Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func alterUserSCRAMCredentialsAPI() apiSpec {
	return apiSpec{
		key:       51,
		pin:       apiPin{0, 0, 0, false, "AlterUserScramCredentials: Alter Cluster"},
		decompose: decomposes(decomposeAlterUserSCRAMCredentials),
		answer:    answers((*authzCall).alterSCRAM),
	}
}

func (c *authzCall) alterSCRAM(r *kmsg.AlterUserSCRAMCredentialsRequest) (*pending, []byte, error) {
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	seen := map[string]bool{}
	add := func(user string) {
		if seen[user] {
			return
		}
		seen[user] = true
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode, res.ErrorMessage = user, kerr.ClusterAuthorizationFailed.Code, errMessage(kerr.ClusterAuthorizationFailed.Code)
		resp.Results = append(resp.Results, res)
	}
	for _, d := range r.Deletions {
		add(d.Name)
	}
	for _, u := range r.Upsertions {
		add(u.Name)
	}
	return c.answer(resp)
}

// decomposeAlterUserSCRAMCredentials (key 51)
func decomposeAlterUserSCRAMCredentials(d decomposer, r *kmsg.AlterUserSCRAMCredentialsRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Alter)}, nil, nil
}
