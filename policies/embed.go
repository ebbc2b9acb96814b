// Package policies embeds kguard's shipped Rego policies and example data so
// that `kguard demo` and tests can load them without a checkout: use
// policy.Config{FS: policies.FS, Dirs: []string{"."}} (add "demo" for the
// permissive demo data set).
package policies

import "embed"

// FS holds the shipped policies: *.rego (with their *_test.rego), config/,
// acls/, protection/ and demo/.
//
//go:embed *.rego config acls protection demo
var FS embed.FS
