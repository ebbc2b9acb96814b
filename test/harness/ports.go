package harness

import (
	"fmt"
	"net"
)

// FreePorts finds n ports with n+16 free ports above each (broker listeners
// use base+node id), by binding and releasing them.
func FreePorts(n int) ([]int, error) {
	var out []int
	for tries := 0; len(out) < n && tries < 200; tries++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		base := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if base+17 > 65535 {
			continue
		}
		ok := true
		for p := base; p <= base+16 && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			out = append(out, base)
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("no free port range found")
	}
	return out, nil
}
