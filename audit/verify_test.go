package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// trail records a clean trail of n authz events on topic (one partition)
// and returns its records.
func trail(t *testing.T, tc *testCluster, keys testKeys, topic string, n int) []*kgo.Record {
	t.Helper()
	sink := newTestSink(t, tc, topic, 1)
	r := mustNew(t, testConfig(t, "kg-v", t.TempDir(), keys, sink))
	recordN(t, r, 0, n)
	closeRecorder(t, r)
	recs := readTopic(t, tc.opts(), topic)
	if rep := verifyTopic(t, tc.opts(), topic, keys.pub); !rep.OK() {
		logReport(t, rep)
		t.Fatal("clean trail does not verify")
	}
	return recs
}

// rewrite copies recs into a fresh topic through edit, as an operator with
// superuser rights on the brokers could, and returns the new topic.
func rewrite(t *testing.T, tc *testCluster, name string, recs []*kgo.Record, edit func([]*kgo.Record) []*kgo.Record) string {
	t.Helper()
	cl, err := kgo.NewClient(tc.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 3, nil, name); err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	for _, r := range recs {
		out = append(out, &kgo.Record{Key: r.Key, Value: append([]byte(nil), r.Value...)})
	}
	produceRaw(t, tc.opts(), name, edit(out)...)
	return name
}

func seqOf(t *testing.T, rec *kgo.Record) uint64 {
	e, err := DecodeEvent(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	return e.Seq
}

// wantFinding fails unless rep has a finding of kind at seq and offset.
func wantFinding(t *testing.T, rep Report, kind FindingKind, seq uint64, offset int64) {
	t.Helper()
	for _, f := range findings(rep, kind) {
		if f.Seq == seq && f.Position.Offset == offset {
			if rep.OK() {
				t.Fatalf("report is OK despite %s", f)
			}
			return
		}
	}
	logReport(t, rep)
	t.Fatalf("no %s finding for seq %d at offset %d", kind, seq, offset)
}

func TestVerifyNamesTampering(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	recs := trail(t, tc, keys, "trail", 200)
	const k = 100 // an authz event in the middle
	if e, _ := DecodeEvent(recs[k].Value); e.Type != EventAuthzDecision {
		t.Fatalf("record %d is %s", k, e.Type)
	}
	seqK := seqOf(t, recs[k])

	t.Run("altered", func(t *testing.T) {
		topic := rewrite(t, tc, "altered", recs, func(rs []*kgo.Record) []*kgo.Record {
			rs[k].Value = bytes.Replace(rs[k].Value, []byte(`"deny"`), []byte(`"allow"`), 1)
			rs[k].Value = bytes.Replace(rs[k].Value, []byte(`User:user-`), []byte(`User:admin-`), 1)
			return rs
		})
		rep := verifyTopic(t, tc.opts(), topic, keys.pub)
		wantFinding(t, rep, FindingAltered, seqK, k)
		if !rep.Has(FindingRootMismatch) {
			t.Fatal("checkpoint covering the altered event not reported")
		}
	})
	t.Run("deleted", func(t *testing.T) {
		topic := rewrite(t, tc, "deleted", recs, func(rs []*kgo.Record) []*kgo.Record {
			return append(rs[:k:k], rs[k+1:]...)
		})
		rep := verifyTopic(t, tc.opts(), topic, keys.pub)
		// Reported at the record after the hole (which now has offset k).
		wantFinding(t, rep, FindingDeleted, seqK, k)
	})
	t.Run("reordered", func(t *testing.T) {
		topic := rewrite(t, tc, "reordered", recs, func(rs []*kgo.Record) []*kgo.Record {
			rs[k], rs[k+1] = rs[k+1], rs[k]
			return rs
		})
		rep := verifyTopic(t, tc.opts(), topic, keys.pub)
		wantFinding(t, rep, FindingReordered, seqK, k+1)
	})
	t.Run("rechained", func(t *testing.T) {
		// A forger alters one event and recomputes every later hash: the
		// chain is consistent again, but the signed roots are not.
		topic := rewrite(t, tc, "rechained", recs, func(rs []*kgo.Record) []*kgo.Record {
			var prev Hash
			for i, r := range rs {
				e, err := DecodeEvent(r.Value)
				if err != nil {
					t.Fatal(err)
				}
				if i == k {
					e.Who.Principal = "User:nobody"
				}
				if i >= k {
					e.Prev = prev
					if r.Value, err = e.Encode(); err != nil {
						t.Fatal(err)
					}
				}
				prev = HashEvent(r.Value)
			}
			return rs
		})
		rep := verifyTopic(t, tc.opts(), topic, keys.pub)
		if rep.OK() || !rep.Has(FindingRootMismatch) || rep.Has(FindingAltered) {
			logReport(t, rep)
			t.Fatal("re-chained forgery not caught by the checkpoints")
		}
	})
	t.Run("malformed", func(t *testing.T) {
		topic := rewrite(t, tc, "malformed", recs, func(rs []*kgo.Record) []*kgo.Record {
			rs[k].Value = []byte("not json")
			return rs
		})
		rep := verifyTopic(t, tc.opts(), topic, keys.pub)
		wantFinding(t, rep, FindingMalformed, 0, k)
		wantFinding(t, rep, FindingDeleted, seqK, k+1)
	})
}

// TestVerifyNamesInsertedEvents forges events straight onto the live topic
// with a separate client while kguard is recording.
func TestVerifyNamesInsertedEvents(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	sink := newTestSink(t, tc, "live", 1)
	r := mustNew(t, testConfig(t, "kg-i", t.TempDir(), keys, sink))
	recordN(t, r, 0, 70)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs := readTopic(t, tc.opts(), "live")
	last := recs[len(recs)-1]
	lastEv, _ := DecodeEvent(last.Value)

	// A careful forger chains to the real tail with the next seq.
	forged := sampleEvent(1)
	forged.Version, forged.Seq, forged.Prev, forged.Time = SchemaVersion, lastEv.Seq+1, HashEvent(last.Value), time.Now().UTC()
	forged.Who.Principal = "User:ghost"
	forged.Where.Instance, forged.Where.Cluster = "kg-i", "test-cluster"
	fv, _ := forged.Encode()
	// A careless one reuses an old seq.
	old := forged
	old.Seq, old.Prev = 5, Hash{1}
	ov, _ := old.Encode()
	offs := produceRaw(t, tc.opts(), "live", &kgo.Record{Key: []byte("kg-i"), Value: fv}, &kgo.Record{Key: []byte("kg-i"), Value: ov})

	recordN(t, r, 70, 30)
	closeRecorder(t, r)
	rep := verifyTopic(t, tc.opts(), "live", keys.pub)
	logReport(t, rep)
	wantFinding(t, rep, FindingInserted, lastEv.Seq+1, offs[0])
	wantFinding(t, rep, FindingInserted, 5, offs[1])
	if rep.Has(FindingAltered) || rep.Has(FindingRootMismatch) || rep.Has(FindingReordered) {
		t.Fatal("genuine events misreported")
	}

	// The CLI entry point exits non-zero on the same trail.
	keyPath := filepath.Join(t.TempDir(), "k.pub")
	pub, _ := os.ReadFile(writePub(t, keys))
	if err := os.WriteFile(keyPath, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err := RunVerify(ctx, VerifyOptions{Kafka: KafkaOptions{Brokers: tc.c.ListenAddrs()}, Topic: "live",
		PublicKeyFiles: []string{keyPath}}, &out)
	if !errors.Is(err, ErrVerifyFailed) || !strings.Contains(out.String(), "inserted") {
		t.Fatalf("RunVerify = %v\n%s", err, out.String())
	}
}

func TestRunVerifyCleanTrail(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	trail(t, tc, keys, "clean", 30)
	var out strings.Builder
	err := RunVerify(context.Background(), VerifyOptions{Kafka: KafkaOptions{Brokers: tc.c.ListenAddrs()},
		Topic: "clean", PublicKeyFiles: []string{writePub(t, keys)}, Timeout: time.Minute}, &out)
	if err != nil || !strings.Contains(out.String(), "OK:") {
		t.Fatalf("RunVerify = %v\n%s", err, out.String())
	}
	if err := RunVerify(context.Background(), VerifyOptions{Kafka: KafkaOptions{Brokers: tc.c.ListenAddrs()},
		Topic: "clean"}, &out); err == nil {
		t.Fatal("verify without public key accepted")
	}
}

func writePub(t *testing.T, keys testKeys) string { return keys.pubFile }

// TestVerifyTransactionalWriteDoesNotHang: a superuser's transactional
// write ends the partition with a control record; the verifier must still
// reach the high watermark and name the forged event.
func TestVerifyTransactionalWriteDoesNotHang(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	recs := trail(t, tc, keys, "txn", 20)
	cl, err := kgo.NewClient(append(tc.opts(), kgo.TransactionalID("forger"), kgo.DefaultProduceTopic("txn"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	forged := &kgo.Record{Key: []byte("kg-v"), Value: recs[3].Value}
	forged.Value = bytes.Replace(forged.Value, []byte("User:user-"), []byte("User:evil-"), 1)
	if err := cl.ProduceSync(ctx, forged).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	rep := verifyTopic(t, tc.opts(), "txn", keys.pub)
	logReport(t, rep)
	wantFinding(t, rep, FindingInserted, seqOf(t, recs[3]), forged.Offset)
}

// TestVerifyTruncatedHead: DeleteRecords by a superuser removes the head of
// the topic; strict verification fails, AllowPrefixLoss (for retention)
// only warns.
func TestVerifyTruncatedHead(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	recs := trail(t, tc, keys, "head", 60)
	cl, err := kgo.NewClient(tc.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: "head", Partition: 0, At: 10})
	res, err := kadm.NewClient(cl).DeleteRecords(context.Background(), offs)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	rep := verifyTopic(t, tc.opts(), "head", keys.pub)
	wantFinding(t, rep, FindingPrefixMissing, seqOf(t, recs[10]), 10)

	rep, err = Verify(context.Background(), VerifyConfig{ClientOpts: tc.opts(), Topic: "head",
		PublicKeys: []ed25519.PublicKey{keys.pub}, AllowPrefixLoss: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := rep.Instances[0]
	if !rep.OK() || !rep.Has(FindingPrefixMissing) || !rep.Has(FindingUnverifiable) ||
		in.AnchoredAt == 0 || in.VerifiedCheckpoints != in.Checkpoints-1 || in.VerifiedSize != in.LastSeq-1 {
		logReport(t, rep)
		t.Fatal("with AllowPrefixLoss a truncated head must warn, not fail")
	}
}
