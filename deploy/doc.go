// Package deploy holds the tests of kguard's deployment artifacts: the Helm
// chart in helm/kguard (helm lint and helm template in both modes, the
// rendered manifests decoded strictly into the Kubernetes API types, the
// rendered kguard.yaml parsed by kguard's own config package) and the
// runtime image of `make image`.
//
// It is a Go module of its own so that helm (a pinned `go tool`) and the
// Kubernetes API types stay out of kguard's go.mod: the proxy never needs
// them, and they would add some hundred modules to every build and audit of
// its dependencies.
package deploy
