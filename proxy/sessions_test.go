package proxy_test

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
)

// sessionDenials returns the authz.decision denials with code for user.
func sessionDenials(e *azEnv, user string, code int16) []audit.Event {
	var out []audit.Event
	for _, ev := range e.events.of(audit.EventAuthzDecision) {
		if ev.Who.Principal == "User:"+user && ev.Outcome != nil && ev.Outcome.Decision == audit.DecisionDeny && ev.Outcome.ErrorCode == code {
			out = append(out, ev)
		}
	}
	return out
}

// A fetch session belongs to the connection that opened it: another
// principal (another tenant) naming its id gets nothing of it, and
// neither does the same principal on another connection. The owner's
// session keeps working.
func TestFetchSessionOwnership(t *testing.T) {
	e := startAzEnv(t)
	a := e.login(t, "acme-app")
	if resp := a.roundTrip(produceTo(9, -1, nil, []string{"acme-secret-1"}, "acme.t1")).(*kmsg.ProduceResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	full := fetchFrom(12, nil, "acme.t1")
	full.SessionID, full.SessionEpoch = 0, 0
	fresp := a.roundTrip(full).(*kmsg.FetchResponse)
	if fresp.ErrorCode != 0 || fresp.SessionID == 0 || len(fetchedValues(t, &fresp.Topics[0].Partitions[0])) == 0 {
		t.Fatalf("full fetch: error %d, session %d, topics %+v", fresp.ErrorCode, fresp.SessionID, fresp.Topics)
	}
	sid := fresp.SessionID
	// New data for the session's partition, which B must not see.
	if resp := a.roundTrip(produceTo(9, -1, nil, []string{"acme-secret-2"}, "acme.t1")).(*kmsg.ProduceResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	leaks := func(who string, resp *kmsg.FetchResponse) {
		t.Helper()
		for _, tp := range resp.Topics {
			for i := range tp.Partitions {
				if len(tp.Partitions[i].RecordBatches) > 0 {
					t.Fatalf("%s: got %d bytes of records of %q from session %d", who, len(tp.Partitions[i].RecordBatches), tp.Topic, sid)
				}
			}
		}
	}

	b := e.login(t, "globex-app")
	for _, epoch := range []int32{1, 7} {
		inc := fetchFrom(12, nil)
		inc.SessionID, inc.SessionEpoch = sid, epoch
		resp := b.roundTrip(inc).(*kmsg.FetchResponse)
		leaks("globex-app epoch "+itoa(epoch), resp)
		if resp.ErrorCode != 70 || len(resp.Topics) != 0 {
			t.Fatalf("globex-app on acme-app's session, epoch %d: error %d, %d topics; want 70 and none", epoch, resp.ErrorCode, len(resp.Topics))
		}
	}
	if d := sessionDenials(e, "globex-app", 70); len(d) != 2 || !strings.Contains(strings.Join(d[0].Outcome.Reasons, ";"), "not created by this connection") {
		t.Fatalf("audit: %d denials (70) for globex-app: %+v", len(d), d)
	}
	// Epoch 0 (a Java client restarting its session) and -1 (sessionless)
	// go on without the session id: a fresh session of B's own, and A's
	// session is not closed.
	for _, epoch := range []int32{0, -1} {
		req := fetchFrom(12, nil)
		req.SessionID, req.SessionEpoch = sid, epoch
		resp := b.roundTrip(req).(*kmsg.FetchResponse)
		leaks("globex-app epoch "+itoa(epoch), resp)
		if resp.ErrorCode != 0 || len(resp.Topics) != 0 || (resp.SessionID == sid) {
			t.Fatalf("globex-app epoch %d with acme-app's session id: error %d, session %d, %d topics", epoch, resp.ErrorCode, resp.SessionID, len(resp.Topics))
		}
	}
	// The same principal on another connection: not its session either.
	a2 := e.login(t, "acme-app")
	inc := fetchFrom(12, nil)
	inc.SessionID, inc.SessionEpoch = sid, 1
	if resp := a2.roundTrip(inc).(*kmsg.FetchResponse); resp.ErrorCode != 70 {
		leaks("acme-app on a second connection", resp)
		t.Fatalf("acme-app on a second connection: error %d, want 70", resp.ErrorCode)
	}
	// The owner still reads its session (incremental, naming nothing), and
	// the read is audited with the topic the session served.
	aresp := a.roundTrip(inc).(*kmsg.FetchResponse)
	if aresp.ErrorCode != 0 || len(aresp.Topics) != 1 || aresp.Topics[0].Topic != "acme.t1" {
		t.Fatalf("owner's incremental fetch: error %d, topics %+v", aresp.ErrorCode, aresp.Topics)
	}
	if v := fetchedValues(t, &aresp.Topics[0].Partitions[0]); len(v) == 0 || v[len(v)-1] != "acme-secret-2" {
		t.Fatalf("owner's incremental fetch: values %q", v)
	}
	var served bool
	for _, ev := range e.events.of(audit.EventAuthzDecision) {
		if ev.Who.Principal == "User:acme-app" && ev.What != nil && ev.What.ResourceName == "acme.t1" && ev.Outcome.Decision == audit.DecisionAllow &&
			strings.Contains(strings.Join(ev.Outcome.Reasons, ";"), "fetch session topics") {
			served = true
		}
	}
	if !served {
		t.Fatal("audit: no event names acme.t1 for the owner's session read")
	}
}
