package harness

import (
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// ConnTracker remembers the connections kfake brokers accept, so a test can
// sever them all at once to simulate a broker crash (kfake's RemoveNode only
// closes the listener and leaves open connections serving).
type ConnTracker struct {
	mu    sync.Mutex
	conns map[string][]net.Conn // listener address -> accepted connections
}

// NewConnTracker returns an empty tracker.
func NewConnTracker() *ConnTracker { return &ConnTracker{conns: map[string][]net.Conn{}} }

// Opt makes a kfake cluster accept connections through the tracker.
func (t *ConnTracker) Opt() kfake.Opt {
	return kfake.ListenFn(func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		return &trackedListener{Listener: ln, t: t}, nil
	})
}

// Sever closes every connection accepted on the listener at addr (a
// broker's host:port) and returns how many it closed.
func (t *ConnTracker) Sever(addr string) int {
	t.mu.Lock()
	cs := t.conns[addr]
	delete(t.conns, addr)
	t.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	return len(cs)
}

type trackedListener struct {
	net.Listener
	t *ConnTracker
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	a := l.Addr().String()
	l.t.mu.Lock()
	l.t.conns[a] = append(l.t.conns[a], c)
	l.t.mu.Unlock()
	return c, nil
}
