//go:build race

package faults_test

// raceEnabled: the test binary runs with -race, so the kguard child process
// of the audit fault tests is built with -race too.
const raceEnabled = true
