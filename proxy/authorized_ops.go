package proxy

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

// Kafka's AclOperation codes: bit i of an authorized-operations field is
// set when operation i is allowed.
var aclOpBit = map[policy.Operation]uint{
	policy.Read: 3, policy.Write: 4, policy.Create: 5, policy.Delete: 6, policy.Alter: 7,
	policy.Describe: 8, policy.ClusterAction: 9, policy.DescribeConfigs: 10,
	policy.AlterConfigs: 11, policy.IdempotentWrite: 12,
}

// The operations Kafka reports per resource type (its supported ops).
var (
	topicOps   = []policy.Operation{policy.Read, policy.Write, policy.Create, policy.Describe, policy.Delete, policy.Alter, policy.DescribeConfigs, policy.AlterConfigs}
	groupOps   = []policy.Operation{policy.Read, policy.Describe, policy.Delete}
	clusterOps = []policy.Operation{policy.Create, policy.ClusterAction, policy.DescribeConfigs, policy.AlterConfigs, policy.IdempotentWrite, policy.Alter, policy.Describe}
)

// authorizedOps computes, with one Authorize call, the authorized
// operations bit field of each named resource for the principal.
func (c *authzCall) authorizedOps(rt policy.ResourceType, names []string) ([]int32, error) {
	ops := topicOps
	switch rt {
	case policy.Group:
		ops = groupOps
	case policy.Cluster:
		ops = clusterOps
	}
	if len(names) == 0 {
		return nil, nil
	}
	req := *c.preq
	req.Details = nil
	req.Actions = make([]policy.Action, 0, len(names)*len(ops))
	for _, n := range names {
		for _, op := range ops {
			req.Actions = append(req.Actions, policy.Action{Resource: rt, Name: n, Operation: op})
		}
	}
	dec, err := c.s.p.authorizer.Authorize(c.s.p.ctx, &req)
	if err != nil {
		return nil, fmt.Errorf("authorization: authorized operations: %w", err)
	}
	if len(dec.Results) != len(req.Actions) {
		return nil, fmt.Errorf("authorization: authorized operations: %d results for %d actions", len(dec.Results), len(req.Actions))
	}
	out := make([]int32, len(names))
	for i := range names {
		var bits int32
		for j, op := range ops {
			if dec.Results[i*len(ops)+j].Allowed {
				bits |= 1 << aclOpBit[op]
			}
		}
		out[i] = bits
	}
	return out, nil
}

// fillAuthorizedOps sets the authorized-operations field of each of n
// entries: entry returns a pointer to it, the resource name, and whether
// the entry is answerable (no error); other entries get "omitted".
func (c *authzCall) fillAuthorizedOps(rt policy.ResourceType, n int, entry func(i int) (*int32, string, bool)) error {
	var names []string
	var fields []*int32
	for i := 0; i < n; i++ {
		f, name, ok := entry(i)
		*f = authorizedOperationsOmitted
		if ok {
			names, fields = append(names, name), append(fields, f)
		}
	}
	ops, err := c.authorizedOps(rt, names)
	if err != nil {
		return err
	}
	for k, f := range fields {
		*f = ops[k]
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// addAuthorizedOpsTransform makes the authorized-operations fields a
// client asked for answer for the client's principal, as the policy
// decides them. The upstream computes them for kguard's own identity,
// which must not be shown.
func (c *authzCall) addAuthorizedOpsTransform() {
	switch c.hdr.APIKey {
	case 3, 15, 60, 69, 75, 77, 89:
	default:
		return
	}
	if c.p == nil {
		return
	}
	switch r := c.req.(type) {
	case *kmsg.MetadataRequest:
		if !r.IncludeTopicAuthorizedOperations && !r.IncludeClusterAuthorizedOperations {
			return
		}
		c.transform(func(kr kmsg.Response) (bool, error) {
			resp := kr.(*kmsg.MetadataResponse)
			if r.IncludeClusterAuthorizedOperations {
				ops, err := c.authorizedOps(policy.Cluster, []string{policy.ClusterName})
				if err != nil {
					return false, err
				}
				if ops[0]&(1<<aclOpBit[policy.Describe]) == 0 {
					ops[0] = 0 // as Kafka: nothing without Describe Cluster
				}
				resp.AuthorizedOperations = ops[0]
			}
			if r.IncludeTopicAuthorizedOperations {
				if err := c.fillAuthorizedOps(policy.Topic, len(resp.Topics), func(i int) (*int32, string, bool) {
					t := &resp.Topics[i]
					return &t.AuthorizedOperations, deref(t.Topic), t.ErrorCode == 0 && t.Topic != nil
				}); err != nil {
					return false, err
				}
			}
			return true, nil
		})
	case *kmsg.DescribeTopicPartitionsRequest:
		c.transform(func(kr kmsg.Response) (bool, error) {
			resp := kr.(*kmsg.DescribeTopicPartitionsResponse)
			if err := c.fillAuthorizedOps(policy.Topic, len(resp.Topics), func(i int) (*int32, string, bool) {
				t := &resp.Topics[i]
				return &t.AuthorizedOperations, deref(t.Topic), t.ErrorCode == 0 && t.Topic != nil
			}); err != nil {
				return false, err
			}
			return true, nil
		})
	case *kmsg.DescribeGroupsRequest:
		if r.IncludeAuthorizedOperations {
			groupOpsTransform(c, func(resp *kmsg.DescribeGroupsResponse, i int) (*int32, string, bool) {
				g := &resp.Groups[i]
				return &g.AuthorizedOperations, g.Group, g.ErrorCode == 0
			}, func(resp *kmsg.DescribeGroupsResponse) int { return len(resp.Groups) })
		}
	case *kmsg.ConsumerGroupDescribeRequest:
		if r.IncludeAuthorizedOperations {
			groupOpsTransform(c, func(resp *kmsg.ConsumerGroupDescribeResponse, i int) (*int32, string, bool) {
				g := &resp.Groups[i]
				return &g.AuthorizedOperations, g.Group, g.ErrorCode == 0
			}, func(resp *kmsg.ConsumerGroupDescribeResponse) int { return len(resp.Groups) })
		}
	case *kmsg.ShareGroupDescribeRequest:
		if r.IncludeAuthorizedOperations {
			groupOpsTransform(c, func(resp *kmsg.ShareGroupDescribeResponse, i int) (*int32, string, bool) {
				g := &resp.Groups[i]
				return &g.AuthorizedOperations, g.GroupID, g.ErrorCode == 0
			}, func(resp *kmsg.ShareGroupDescribeResponse) int { return len(resp.Groups) })
		}
	case *kmsg.StreamsGroupDescribeRequest:
		if r.IncludeAuthorizedOperations {
			groupOpsTransform(c, func(resp *kmsg.StreamsGroupDescribeResponse, i int) (*int32, string, bool) {
				g := &resp.Groups[i]
				return &g.AuthorizedOperations, g.Group, g.ErrorCode == 0
			}, func(resp *kmsg.StreamsGroupDescribeResponse) int { return len(resp.Groups) })
		}
	case *kmsg.DescribeClusterRequest:
		if !r.IncludeClusterAuthorizedOperations {
			return
		}
		c.transform(func(kr kmsg.Response) (bool, error) {
			resp := kr.(*kmsg.DescribeClusterResponse)
			if resp.ErrorCode != 0 {
				return false, nil
			}
			ops, err := c.authorizedOps(policy.Cluster, []string{policy.ClusterName})
			if err != nil {
				return false, err
			}
			if ops[0]&(1<<aclOpBit[policy.Describe]) == 0 {
				ops[0] = 0 // as Kafka: nothing without Describe Cluster
			}
			resp.ClusterAuthorizedOperations = ops[0]
			return true, nil
		})
	}
}

// groupOpsTransform recomputes the authorized operations of every group a
// group-describe response R lists: group(resp, i) points at group i's
// field, names it, and says whether it was found; n counts the groups.
func groupOpsTransform[R kmsg.Response](c *authzCall, group func(R, int) (*int32, string, bool), n func(R) int) {
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(R)
		if err := c.fillAuthorizedOps(policy.Group, n(resp), func(i int) (*int32, string, bool) {
			return group(resp, i)
		}); err != nil {
			return false, err
		}
		return true, nil
	})
}
