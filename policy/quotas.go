package policy

import (
	"github.com/kguard/kguard/config"
)

// QuotaPath is where the policy data holds the client quota rules:
// data.config.quotas, e.g. a file config/quotas.json under a policy root
// holding {"quotas": {"rules": [...]}}, each rule as in the configuration's
// quotas.rules.
const QuotaPath = "config.quotas"

// quotaData reads the quota rules from the loaded data documents: nil when
// there is no quotas document, an error when it is malformed (the policy
// revision is then refused, and a reload keeps the old one).
func quotaData(docs map[string]any) (*config.Quotas, error) {
	cfg, _ := docs["config"].(map[string]any)
	doc, ok := cfg["quotas"]
	if !ok {
		return nil, nil
	}
	rules, err := config.DecodeQuotaRules(doc)
	if err != nil {
		return nil, err
	}
	return &config.Quotas{Rules: rules}, nil
}

// Quotas returns the client quota rules of the policy revision in force
// (only Rules is set), nil when its data has no quotas document. The same
// pointer is returned until a reload puts another revision in force.
func (e *Engine) Quotas() *config.Quotas { return e.state.Load().quotas }
