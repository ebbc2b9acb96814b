package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy/wire"
)

// kguardVersion is reported to brokers in ApiVersions v3+.
const kguardVersion = "0.1.0"

// dialer opens authenticated connections to upstream brokers as kguard's own
// identity: TCP, then TLS, then ApiVersions, then SASL.
type dialer struct {
	timeout  time.Duration
	clientID string
	tls      *tls.Config
	mech     sasl.Mechanism
	pool     *wire.Pool
	maxFrame int32

	// versions are the ApiVersions answers of the brokers kguard last
	// connected to, by address: clients are answered from them before
	// they have authenticated, when kguard has not dialed for them yet.
	mu       sync.Mutex
	versions map[string]*kmsg.ApiVersionsResponse
}

func newDialer(c *config.Upstream, pool *wire.Pool, maxFrame int32, onTLSError func(error)) (*dialer, error) {
	d := &dialer{timeout: c.DialTimeout, clientID: c.ClientID, pool: pool, maxFrame: maxFrame,
		versions: map[string]*kmsg.ApiVersionsResponse{}}
	if c.TLS != nil {
		t, err := clientTLSConfig(c.TLS, onTLSError)
		if err != nil {
			return nil, err
		}
		d.tls = t
	}
	if s := c.SASL; s != nil {
		pass := s.Password
		if s.PasswordFile != "" {
			b, err := os.ReadFile(s.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("upstream.sasl.password_file: %w", err)
			}
			pass = strings.TrimRight(string(b), "\r\n")
		}
		switch s.Mechanism {
		case "PLAIN":
			d.mech = plain.Auth{User: s.Username, Pass: pass}.AsMechanism()
		case "SCRAM-SHA-256":
			d.mech = scram.Auth{User: s.Username, Pass: pass}.AsSha256Mechanism()
		case "SCRAM-SHA-512":
			d.mech = scram.Auth{User: s.Username, Pass: pass}.AsSha512Mechanism()
		}
	}
	return d, nil
}

// upConn is an authenticated upstream connection and what the broker said
// it supports.
type upConn struct {
	net.Conn
	addr     string
	versions *kmsg.ApiVersionsResponse
	corr     int32 // next correlation id for kguard's own requests
}

// dial connects to addr and readies the connection for client traffic. The
// correlation ids kguard used are all answered before it returns, so client
// requests can follow on the same connection with their own ids.
func (d *dialer) dial(ctx context.Context, addr string) (*upConn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dialing upstream %s: %w", addr, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if d.tls != nil {
		cfg := d.tls
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with upstream %s: %w", addr, err)
		}
		c = tc
	}
	u := &upConn{Conn: c, addr: addr}
	if err := d.handshake(ctx, u); err != nil {
		c.Close()
		return nil, fmt.Errorf("upstream %s: %w", addr, err)
	}
	_ = c.SetDeadline(time.Time{})
	d.mu.Lock()
	d.versions[addr] = u.versions
	d.mu.Unlock()
	return u, nil
}

// knownVersions is the ApiVersions answer last received from addr, else
// from any broker (nil when kguard has never connected to one).
func (d *dialer) knownVersions(addr string) *kmsg.ApiVersionsResponse {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.versions[addr]; ok {
		return v
	}
	for _, v := range d.versions {
		return v
	}
	return nil
}

func (d *dialer) handshake(ctx context.Context, u *upConn) error {
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	av.ClientSoftwareName = "kguard"
	av.ClientSoftwareVersion = kguardVersion
	resp, err := d.roundTrip(u, av)
	if err != nil {
		return fmt.Errorf("ApiVersions: %w", err)
	}
	avr := resp.(*kmsg.ApiVersionsResponse)
	if err := kerr.ErrorForCode(avr.ErrorCode); err != nil {
		return fmt.Errorf("ApiVersions: %w", err)
	}
	u.versions = avr
	if d.mech == nil {
		return nil
	}
	return d.authenticate(ctx, u)
}

func (d *dialer) authenticate(ctx context.Context, u *upConn) error {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = d.mech.Name()
	resp, err := d.roundTrip(u, hs)
	if err != nil {
		return fmt.Errorf("SaslHandshake: %w", err)
	}
	if err := kerr.ErrorForCode(resp.(*kmsg.SASLHandshakeResponse).ErrorCode); err != nil {
		return fmt.Errorf("SaslHandshake %s: %w", d.mech.Name(), err)
	}
	sess, msg, err := d.mech.Authenticate(ctx, u.addr)
	if err != nil {
		return fmt.Errorf("SASL %s: %w", d.mech.Name(), err)
	}
	authV := versionFor(u.versions, 36, 2)
	for {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.SetVersion(authV)
		req.SASLAuthBytes = msg
		resp, err := d.roundTrip(u, req)
		if err != nil {
			return fmt.Errorf("SaslAuthenticate: %w", err)
		}
		ar := resp.(*kmsg.SASLAuthenticateResponse)
		if ar.ErrorCode != 0 {
			m := ""
			if ar.ErrorMessage != nil {
				m = ": " + *ar.ErrorMessage
			}
			return fmt.Errorf("SASL %s as kguard's identity refused: %w%s", d.mech.Name(), kerr.ErrorForCode(ar.ErrorCode), m)
		}
		done, next, err := sess.Challenge(ar.SASLAuthBytes)
		if err != nil {
			return fmt.Errorf("SASL %s: %w", d.mech.Name(), err)
		}
		if done && next == nil {
			return nil
		}
		msg = next
		if done {
			// A final message that expects no answer is not part of
			// any mechanism kguard uses upstream.
			return errors.New("SASL mechanism sent a final message")
		}
	}
}

// versionFor is the highest version of key both kmsg and the broker support,
// capped at max.
func versionFor(v *kmsg.ApiVersionsResponse, key int16, max int16) int16 {
	if km := wire.KmsgMaxVersion(key); km < max {
		max = km
	}
	if v == nil {
		return 0
	}
	for _, k := range v.ApiKeys {
		if k.ApiKey == key {
			if k.MaxVersion < max {
				return k.MaxVersion
			}
			return max
		}
	}
	return 0
}

// roundTrip sends one of kguard's own requests and reads its response.
func (d *dialer) roundTrip(u *upConn, req kmsg.Request) (kmsg.Response, error) {
	u.corr++
	corr := u.corr
	if _, err := u.Write(wire.AppendRequest(nil, corr, d.clientID, req)); err != nil {
		return nil, err
	}
	f, err := wire.ReadFrame(u, d.pool, d.maxFrame)
	if err != nil {
		return nil, err
	}
	defer f.Release()
	resp := req.ResponseKind()
	got, off, err := wire.ParseResponseHeader(f.Body(), wire.ResponseHeaderFlexible(req.Key(), req.IsFlexible()))
	if err != nil {
		return nil, err
	}
	if got != corr {
		return nil, fmt.Errorf("response correlation id %d, want %d", got, corr)
	}
	// The response must not alias the pooled frame (released on return):
	// SASL mechanisms keep the challenge bytes after this call.
	if err := resp.ReadFrom(bytes.Clone(f.Body()[off:])); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", resp, err)
	}
	return resp, nil
}

// brokerAddr is an upstream broker's node id and address.
type brokerAddr struct {
	node int32
	addr string
}

// fetchBrokers asks one upstream broker for the cluster's brokers.
func (d *dialer) fetchBrokers(ctx context.Context, addr string) ([]brokerAddr, error) {
	u, err := d.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer u.Close()
	_ = u.SetDeadline(time.Now().Add(d.timeout))
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(versionFor(u.versions, 3, 12))
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := d.roundTrip(u, req)
	if err != nil {
		return nil, fmt.Errorf("metadata from %s: %w", addr, err)
	}
	var out []brokerAddr
	for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
		out = append(out, brokerAddr{b.NodeID, net.JoinHostPort(b.Host, fmt.Sprint(b.Port))})
	}
	return out, nil
}
