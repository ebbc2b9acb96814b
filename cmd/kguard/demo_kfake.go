package main

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// The demo's in-process cluster (kfake) answers a few requests differently
// from Apache Kafka, and Kafka's own command-line tools (kafka-topics,
// kafka-get-offsets, kafka-consumer-groups) trip over them. These options
// make kfake behave as a Kafka broker does for those tools. They shape only
// the demo's upstream: kguard's proxy path is the same as in front of a real
// cluster.
//
//   - CreateTopics v5+ answers a topic created without configs with a null
//     Configs array (Kafka sends the topic's configs), which Kafka's
//     AdminClient dereferences. kfake announces CreateTopics up to v4, which
//     has no Configs; the AdminClient then reports no configs, as it does for
//     brokers before Kafka 2.4.
//   - DescribeTopicPartitions answers null EligibleLeaderReplicas and
//     LastKnownElr arrays, which the AdminClient dereferences. kfake does not
//     announce the API, so the AdminClient describes topics through Metadata,
//     its documented fallback for brokers without the API.
func demoKfakeVersions() kfake.Opt {
	v := kversion.Tip()
	v.SetMaxKeyVersion(int16(kmsg.CreateTopics), 4)
	v.SetMaxKeyVersion(int16(kmsg.DescribeTopicPartitions), -1)
	return kfake.MaxVersions(v)
}

// demoKfakeControls installs the request hooks that need the running
// cluster:
//
//   - ListGroups v5 filters by group type. Kafka matches the type names
//     case-insensitively (the AdminClient sends "Consumer" and "Classic");
//     kfake compares them exactly, so `kafka-consumer-groups --list` listed
//     nothing. The hook lower-cases the filter and lets kfake answer.
func demoKfakeControls(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.ListGroups), func(r kmsg.Request) (kmsg.Response, error, bool) {
		if req, ok := r.(*kmsg.ListGroupsRequest); ok {
			for i, t := range req.TypesFilter {
				req.TypesFilter[i] = strings.ToLower(t)
			}
		}
		return nil, nil, false // not handled: kfake answers the adjusted request
	})
}
