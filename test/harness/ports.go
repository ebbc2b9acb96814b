package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// portSpan is the number of ports each base reserves: the base itself and
// broker listeners at base+node id.
const portSpan = 17

// FreePorts finds n ports with 16 free ports above each (broker listeners
// use base+node id), by binding and releasing them.
//
// The ports come from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), in distinct random slots: a port chosen
// from the ephemeral range can be taken, between this check and the test's
// own listen, by any listener on port 0 or any outgoing connection (an
// in-process Kafka's brokers, kguard's upstream connections), and stay
// taken for the whole test.
func FreePorts(n int) ([]int, error) {
	lo, hi := 20000, ephemeralLow()-portSpan
	if hi-lo < 100*portSpan {
		return freeEphemeralPorts(n)
	}
	slots := (hi - lo) / portSpan
	used := map[int]bool{}
	var out []int
	for tries := 0; len(out) < n && tries < 500; tries++ {
		s := rand.IntN(slots)
		if used[s] {
			continue
		}
		used[s] = true
		if base := lo + s*portSpan; spanFree(base) {
			out = append(out, base)
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("no free port range found below %d", hi)
	}
	return out, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768,
// Linux's default, when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	v, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return v
}

func spanFree(base int) bool {
	for p := base; p < base+portSpan; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// freeEphemeralPorts is the fallback where the range below the ephemeral
// ports is too small: ports the kernel hands out for port 0.
func freeEphemeralPorts(n int) ([]int, error) {
	var out []int
	for tries := 0; len(out) < n && tries < 200; tries++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		base := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if base+portSpan > 65535 {
			continue
		}
		if spanFree(base) {
			out = append(out, base)
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("no free port range found")
	}
	return out, nil
}
