//go:build !race

package faults_test

// raceEnabled: the test binary runs without -race (see audit_race_test.go).
const raceEnabled = false
