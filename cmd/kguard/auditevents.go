package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/user"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/policy"
)

// The policy's rules and data (not its Rego tests) are copied into
// policy.reload events, for the change-control evidence of `kguard
// compliance report`, up to this many bytes in total; beyond it only the
// per-file hashes are recorded. The event must fit the audit spool and a
// Kafka record comfortably (the shipped policies: about 33 KB).
const policySourceBudget = 64 << 10

// Detail key prefixes of policy.reload events.
const (
	detailPolicySHA = "sha256:" // + file name: hex SHA-256 of the file
	detailPolicySrc = "src:"    // + file name: the file's content
)

// recordPolicyRevision records a policy.reload event for the revision in
// force: its id, why (start or reload), and each file's hash and content.
// With the audit trail off (rec nil) it does nothing. A failure to record
// is logged: the revision is already in force.
func recordPolicyRevision(rec *audit.Recorder, eng *policy.Engine, reason string, log *zap.Logger) {
	if rec == nil || eng == nil {
		return
	}
	rev, files := eng.Sources()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	details := map[string]string{"reason": reason, "files": fmt.Sprint(len(names))}
	total := 0
	for _, n := range names {
		if !strings.HasSuffix(n, "_test.rego") {
			total += len(files[n])
		}
	}
	for _, n := range names {
		h := sha256.Sum256(files[n])
		details[detailPolicySHA+n] = hex.EncodeToString(h[:])
		if total <= policySourceBudget && !strings.HasSuffix(n, "_test.rego") {
			details[detailPolicySrc+n] = string(files[n])
		}
	}
	if total > policySourceBudget {
		details["sources"] = fmt.Sprintf("omitted: %d bytes exceed %d", total, policySourceBudget)
	}
	err := rec.Record(audit.Event{Type: audit.EventPolicyReload,
		What:    &audit.What{Operation: "POLICY_LOAD", ResourceType: "POLICY", ResourceName: rev},
		Outcome: &audit.Outcome{Decision: audit.DecisionAllow, PolicyRev: rev},
		Details: details})
	if err != nil {
		log.Error("policy revision not recorded in the audit trail", zap.String("revision", rev), zap.Error(err))
	}
}

// cliAudit records the events of one kguard command (key rotation,
// shredding) in the audit trail: its own chain (instance
// "<instance>-cli-<random>", a temporary spool), shipped and closed before
// the command returns, so it never shares a spool with a running kguard.
type cliAudit struct {
	rec   *audit.Recorder
	stop  func(context.Context)
	spool string
	who   *audit.Who
}

// openCLIAudit starts the command's recorder. It returns nil with the audit
// trail off; an error when it is on but cannot start (the caller must then
// not perform the operation: fail closed).
func openCLIAudit(ctx context.Context, cfg *config.Config, log *zap.Logger) (*cliAudit, error) {
	if !cfg.Audit.Enabled {
		return nil, nil
	}
	spool, err := os.MkdirTemp("", "kguard-cli-audit-")
	if err != nil {
		return nil, fmt.Errorf("audit spool for the command: %w", err)
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("audit instance id: %w", err)
	}
	c := *cfg
	base := c.Audit.InstanceID
	if base == "" {
		if base, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("audit instance id: %w", err)
		}
	}
	c.Audit.InstanceID = base + "-cli-" + hex.EncodeToString(rnd[:])
	c.Audit.SpoolDir = spool
	rec, stop, err := startAudit(ctx, &c, nil, log)
	if err != nil {
		_ = os.RemoveAll(spool)
		return nil, fmt.Errorf("audit trail (the operation was not performed): %w", err)
	}
	who := &audit.Who{Principal: "local:unknown", ClientID: "kguard-cli"}
	if u, err := user.Current(); err == nil {
		who.Principal = "local:" + u.Username
	}
	return &cliAudit{rec: rec, stop: stop, spool: spool, who: who}, nil
}

// keyOperation records a key.operation event.
func (a *cliAudit) keyOperation(op, key string, details map[string]string, opErr error) error {
	if a == nil {
		return nil
	}
	out := &audit.Outcome{Decision: audit.DecisionAllow}
	if opErr != nil {
		out = &audit.Outcome{Decision: audit.DecisionDeny, ErrorCode: -1, Reasons: []string{opErr.Error()}}
	}
	return a.rec.Record(audit.Event{Type: audit.EventKeyOperation, Who: a.who,
		What: &audit.What{Operation: op, ResourceType: "KEY", ResourceName: key}, Outcome: out, Details: details})
}

// close ships the command's events and removes the spool; when shipping
// does not finish in time the spool is kept and named in the error.
func (a *cliAudit) close(stderr io.Writer) error {
	if a == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.rec.Close(ctx)
	a.stop(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "kguard: audit events not yet shipped stay in %s\n", a.spool)
		return fmt.Errorf("audit trail: %w", err)
	}
	return os.RemoveAll(a.spool)
}
