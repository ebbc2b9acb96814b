package adversarial_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn is a hand-driven Kafka connection: requests are sent at exactly
// the version the case sets, with nothing a client library would add.
type rawConn struct {
	c    net.Conn
	br   *bufio.Reader
	corr int32
	fmt  *kmsg.RequestFormatter
}

func dialRaw(addr string) (*rawConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawConn{c: c, br: bufio.NewReader(c), fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("adversarial"))}, nil
}

func (r *rawConn) close() { r.c.Close() }

// login authenticates with SASL PLAIN (SaslHandshake v1, SaslAuthenticate
// v2).
func (r *rawConn) login(user, pass string) error {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "PLAIN"
	resp, err := r.send(hs)
	if err != nil {
		return fmt.Errorf("SaslHandshake: %w", err)
	}
	if err := kerr.ErrorForCode(resp.(*kmsg.SASLHandshakeResponse).ErrorCode); err != nil {
		return fmt.Errorf("SaslHandshake: %w", err)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SetVersion(2)
	au.SASLAuthBytes = []byte("\x00" + user + "\x00" + pass)
	resp, err = r.send(au)
	if err != nil {
		return fmt.Errorf("SaslAuthenticate: %w", err)
	}
	if err := kerr.ErrorForCode(resp.(*kmsg.SASLAuthenticateResponse).ErrorCode); err != nil {
		return fmt.Errorf("SaslAuthenticate: %w", err)
	}
	return nil
}

// send writes req at its set version and reads its response.
func (r *rawConn) send(req kmsg.Request) (kmsg.Response, error) {
	r.corr++
	if _, err := r.c.Write(r.fmt.AppendRequest(nil, req, r.corr)); err != nil {
		return nil, err
	}
	body, err := r.readFrame(10 * time.Second)
	if err != nil {
		return nil, err
	}
	if len(body) < 4 {
		return nil, fmt.Errorf("response of %d bytes", len(body))
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != r.corr {
		return nil, fmt.Errorf("correlation id %d, want %d", corr, r.corr)
	}
	body = body[4:]
	if req.IsFlexible() && req.Key() != 18 {
		b := kbin(body)
		if err := b.skipTags(); err != nil {
			return nil, err
		}
		body = b
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// write sends raw bytes (a hand-made frame, or part of one).
func (r *rawConn) write(b []byte) error {
	_, err := r.c.Write(b)
	return err
}

// readFrame reads one size-prefixed frame.
func (r *rawConn) readFrame(timeout time.Duration) ([]byte, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(timeout))
	var sz [4]byte
	if _, err := io.ReadFull(r.br, sz[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(sz[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.br, body); err != nil {
		return nil, err
	}
	return body, nil
}

// closedByPeer reports whether the connection was closed (or reset) by
// kguard within timeout, without sending anything.
func (r *rawConn) closedByPeer(timeout time.Duration) bool {
	_ = r.c.SetReadDeadline(time.Now().Add(timeout))
	_, err := r.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// metadata asks for topics (nil: all) at Metadata v12.
func (r *rawConn) metadata(topics []string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
	}
	resp, err := r.send(req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// kbin skips a flexible response header's tagged fields.
type kbin []byte

func (b *kbin) uvarint() (uint64, error) {
	v, n := binary.Uvarint(*b)
	if n <= 0 {
		return 0, errors.New("bad uvarint")
	}
	*b = (*b)[n:]
	return v, nil
}

func (b *kbin) skipTags() error {
	n, err := b.uvarint()
	if err != nil {
		return err
	}
	for range n {
		if _, err := b.uvarint(); err != nil {
			return err
		}
		size, err := b.uvarint()
		if err != nil {
			return err
		}
		if uint64(len(*b)) < size {
			return errors.New("tag overruns the header")
		}
		*b = (*b)[size:]
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// copyShippedPolicies copies policies/ without its permissive demo data.
func copyShippedPolicies(dst string) error {
	src := filepath.Join("..", "..", "policies")
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if rel == "demo" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !strings.HasSuffix(p, ".rego") && !strings.HasSuffix(p, ".json") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

// createTopics creates topics with 3 partitions and replication factor 3
// (an existing topic is fine).
func createTopics(ctx context.Context, cl *kgo.Client, topics ...string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	for _, tp := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = tp, 3, 3
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating %s: %w", t.Topic, err)
		}
	}
	return nil
}
