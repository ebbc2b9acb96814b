package proxy

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

// errAuditUnavailable is wrapped by every error of an audit event that
// could not be kept (the spool is full in fail-closed mode).
var errAuditUnavailable = errors.New("audit trail unavailable")

// The retriable errors a request is answered with when its authorization
// decision cannot be audited: clients back off and retry them.
const (
// kerr.KafkaStorageError.Code (56, KAFKA_STORAGE_ERROR, protect.go) for topic and
// cluster resources: clients refresh metadata and retry.
// kerr.CoordinatorNotAvailable.Code for group and transactional id resources:
// clients look the coordinator up again and retry.

)

// unauditedMessage is the error message of such an answer.
const unauditedMessage = "kguard: the audit trail is unavailable (spool full); retry later"

// retriableFor maps the error a handler answers a denial with to the
// retriable error answered when the decision could not be audited, or 0
// for a code that is not a denial.
func retriableFor(code int16) int16 {
	switch code {
	case kerr.GroupAuthorizationFailed.Code, kerr.TransactionalIDAuthorizationFailed.Code:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.TopicAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Code, kerr.DelegationTokenAuthorizationFailed.Code, kerr.PolicyViolation.Code, kerr.OperationNotAttempted.Code:
		return kerr.KafkaStorageError.Code
	}
	return 0
}

// refuseUnaudited answers a request whose authorization decision could not
// be recorded, so nothing of it may reach a broker (fail closed), with a
// retriable error rather than a closed connection. The request's handler
// runs as for a request denied in full; its answer carries, in every entry,
// the retriable counterpart of the denial (retriableFor). Where the handler
// would forward what needs no authorization and merge the denials into the
// broker's response (Metadata keeps its broker list that way), nothing is
// forwarded: its response transforms run on an empty response instead.
// When that answer carries no denial (a filtered listing, an API without
// resources) the top-level error code carries the retriable error, if the
// response has one at this version. Otherwise, and for a request without a
// response (Produce acks=0), the connection closes.
func (c *authzCall) refuseUnaudited(cause error) (*pending, []byte, error) {
	cause = fmt.Errorf("%s v%d not answered: %w", c.preq.APIName, c.hdr.APIVersion, cause)
	if c.p == nil {
		return nil, nil, cause
	}
	c.dec = &policy.Decision{
		Results: make([]policy.Result, len(c.preq.Actions)),
		Reasons: []string{"audit trail unavailable"},
	}
	if c.spec.answer == nil && topLevelError(c.req, kerr.KafkaStorageError.Code) == nil {
		// Answered as a whole, and the response has no error code on the
		// wire at this version: only a closed connection says "retry".
		return nil, nil, cause
	}
	c.byAction = nil
	c.unaudited = true
	p, out, err := c.dispatch()
	if err == nil && p != nil && out != nil && p.local == nil {
		// Would forward: build the answer from an empty response.
		resp := c.req.ResponseKind()
		if d, ok := resp.(interface{ Default() }); ok {
			d.Default()
		}
		resp.SetVersion(c.hdr.APIVersion)
		for _, fn := range p.transforms {
			if _, err = fn(resp); err != nil {
				break
			}
		}
		if err == nil {
			p, out, err = c.answer(resp)
		}
	}
	if err == nil && out == nil && p != nil && p.local != nil && c.retried > 0 {
		return p, nil, nil
	}
	c.p.local, c.p.transforms = nil, nil
	code := kerr.KafkaStorageError.Code
	if len(c.preq.Actions) > 0 {
		code = retriableFor(denyCode(c.preq.Actions[0]))
	}
	resp := topLevelError(c.req, code)
	if resp == nil {
		return nil, nil, cause
	}
	setErrorMessage(resp, unauditedMessage)
	c.unaudited = false // already the retriable code
	return c.answer(resp)
}

// topLevelError is genericError when the response's top-level error code
// is on the wire at the request's version, else nil.
func topLevelError(req kmsg.Request, code int16) kmsg.Response {
	resp := genericError(req, code)
	if resp == nil {
		return nil
	}
	zero := genericError(req, 0)
	if string(resp.AppendTo(nil)) == string(zero.AppendTo(nil)) {
		return nil
	}
	return resp
}

// retryDenials replaces, everywhere in resp, a denial's error code by its
// retriable counterpart (and the entry's error message, where it has one).
// It returns how many codes it replaced.
func retryDenials(resp kmsg.Response) int {
	return retryValue(reflect.ValueOf(resp).Elem())
}

var stringPtrType = reflect.TypeFor[*string]()

func retryValue(v reflect.Value) int {
	n := 0
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() && v.Elem().Kind() == reflect.Struct {
			n += retryValue(v.Elem())
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := 0; i < v.Len(); i++ {
				n += retryValue(v.Index(i))
			}
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if !f.CanSet() {
				continue
			}
			if v.Type().Field(i).Name == "ErrorCode" && f.Kind() == reflect.Int16 {
				if r := retriableFor(int16(f.Int())); r != 0 {
					f.SetInt(int64(r))
					if m := v.FieldByName("ErrorMessage"); m.IsValid() && m.Type() == stringPtrType {
						msg := unauditedMessage
						m.Set(reflect.ValueOf(&msg))
					}
					n++
				}
				continue
			}
			n += retryValue(f)
		}
	}
	return n
}
