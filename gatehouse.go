// Package gatehouse holds the domain of the Gatehouse permission and guardrail
// service: subjects, the policy model, decisions with stable reason codes,
// sentinel errors and the small interfaces the store, audit log and clock
// implement. It imports nothing beyond the standard library; every other
// package of the module is a view onto these types.
package gatehouse

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Every error returned by a Gatehouse package wraps at most
// one of these, so surfaces can map it to a stable code with ErrorCode and
// callers can test it with errors.Is.
var (
	// ErrInvalid reports malformed input: a bad policy document, an empty
	// email, an unknown reference. Nothing was changed.
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound reports that a named user, agent, tenant or object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict reports that the stored policy changed between read and
	// write (optimistic concurrency); the caller may retry from a fresh read.
	ErrConflict = errors.New("conflict: policy changed concurrently")
	// ErrLastSuperuser reports a change that would leave the store without a
	// superuser while it had one. Promote another user first.
	ErrLastSuperuser = errors.New("cannot remove the last superuser")
	// ErrUnavailable reports that the store cannot be reached or is locked by
	// another process; retrying later may succeed. Nothing was changed.
	ErrUnavailable = errors.New("store unavailable")
	// ErrCorrupt reports a store whose contents cannot be read: not a
	// database, a damaged file, or a broken audit chain.
	ErrCorrupt = errors.New("store corrupt")
	// ErrSchemaTooNew reports a database migrated by a newer Gatehouse.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
	// ErrForbidden reports a caller that may not do what it asked: it does
	// not administer the object, or its credential lacks the right. A
	// *ForbiddenError carries the reason code of the decision that refused.
	ErrForbidden = errors.New("forbidden")
	// ErrAskForbidden reports a question about another subject from a
	// caller that may ask only about itself: neither a policy enforcement
	// point nor an administrator. It is not a decision.
	ErrAskForbidden = errors.New("only a policy enforcement point or an administrator may ask about another subject")
	// ErrNotEmpty reports a restore into a store that already holds a
	// policy or audit events. Nothing was changed.
	ErrNotEmpty = errors.New("store is not empty")
)

// Stable error codes as surfaces (CLI, HTTP) report them.
const (
	CodeInvalid       = "invalid"
	CodeNotFound      = "not_found"
	CodeConflict      = "conflict"
	CodeLastSuperuser = "last_superuser"
	CodeUnavailable   = "unavailable"
	CodeCorrupt       = "corrupt"
	CodeSchemaTooNew  = "schema_too_new"
	CodeNotEmpty      = "not_empty"
	CodeAskForbidden  = "ask_forbidden"
	CodeForbidden     = "forbidden"
	CodeInternal      = "internal"
)

// ErrorCode maps err to its stable code; errors that wrap no sentinel are
// CodeInternal.
func ErrorCode(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrInvalid):
		return CodeInvalid
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrConflict):
		return CodeConflict
	case errors.Is(err, ErrLastSuperuser):
		return CodeLastSuperuser
	case errors.Is(err, ErrUnavailable):
		return CodeUnavailable
	case errors.Is(err, ErrCorrupt):
		return CodeCorrupt
	case errors.Is(err, ErrSchemaTooNew):
		return CodeSchemaTooNew
	case errors.Is(err, ErrIllegalTransition):
		return CodeIllegalTransition
	case errors.Is(err, ErrActionExpired):
		return CodeActionExpired
	case errors.Is(err, ErrNotApprover):
		return CodeNotApprover
	case errors.Is(err, ErrNotEmpty):
		return CodeNotEmpty
	case errors.Is(err, ErrAskForbidden):
		return CodeAskForbidden
	case errors.Is(err, ErrForbidden):
		return CodeForbidden
	}
	return CodeInternal
}

// ForbiddenError is an ErrForbidden with the reason code of the decision
// that refused (permission_missing, tenant_not_visible, …).
type ForbiddenError struct {
	Reason Reason
	Err    error
}

func (e *ForbiddenError) Error() string {
	if e.Err == nil {
		return ErrForbidden.Error()
	}
	return e.Err.Error() + ": " + ErrForbidden.Error()
}

// Is makes a ForbiddenError match ErrForbidden.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }

// Unwrap returns the cause.
func (e *ForbiddenError) Unwrap() error { return e.Err }

// Forbiddenf returns a *ForbiddenError with reason and a formatted cause.
func Forbiddenf(reason Reason, format string, args ...any) error {
	return &ForbiddenError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Invalidf returns an error wrapping ErrInvalid with a formatted message.
func Invalidf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// NotFoundf returns an error wrapping ErrNotFound with a formatted message.
func NotFoundf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNotFound)
}

// SubjectType says who asks: a human user or an agent (service identity).
type SubjectType string

// Subject types.
const (
	SubjectUser  SubjectType = "user"
	SubjectAgent SubjectType = "agent"
)

// SubjectRef names a subject: a user by email (case-insensitive) or an agent
// by id. The zero value names nobody.
type SubjectRef struct {
	Type SubjectType `json:"type"`
	ID   string      `json:"id"`
}

// User returns a reference to the user with email.
func User(email string) SubjectRef { return SubjectRef{Type: SubjectUser, ID: email} }

// AgentRef returns a reference to the agent with id.
func AgentRef(id string) SubjectRef { return SubjectRef{Type: SubjectAgent, ID: id} }

// IsZero reports whether s names nobody.
func (s SubjectRef) IsZero() bool { return s.Type == "" && s.ID == "" }

// String formats s as "user:EMAIL" or "agent:ID".
func (s SubjectRef) String() string {
	if s.IsZero() {
		return ""
	}
	return string(s.Type) + ":" + s.ID
}

// ParseSubject parses "user:EMAIL", "agent:ID" or a bare email (a user).
// It returns ErrInvalid for an empty id or an unknown type.
func ParseSubject(s string) (SubjectRef, error) {
	s = strings.TrimSpace(s)
	typ, id, found := strings.Cut(s, ":")
	if !found {
		if strings.Contains(s, "@") {
			return SubjectRef{Type: SubjectUser, ID: NormalizeEmail(s)}, nil
		}
		return SubjectRef{}, Invalidf("subject %q: want user:EMAIL or agent:ID", s)
	}
	id = strings.TrimSpace(id)
	switch SubjectType(typ) {
	case SubjectUser:
		id = NormalizeEmail(id)
		if id == "" {
			return SubjectRef{}, Invalidf("subject %q: empty email", s)
		}
	case SubjectAgent:
		if id == "" {
			return SubjectRef{}, Invalidf("subject %q: empty agent id", s)
		}
	default:
		return SubjectRef{}, Invalidf("subject %q: unknown type %q, want user or agent", s, typ)
	}
	return SubjectRef{Type: SubjectType(typ), ID: id}, nil
}

// NormalizeEmail trims an email and folds its ASCII letters to lower case;
// emails compare this way everywhere in Gatehouse. It never applies Unicode
// case-folding, which maps look-alikes such as "İ" (U+0130) to "i" and the
// Kelvin sign to "k". Policies and credentials admit only canonical
// addresses (package mailaddr), which are ASCII, so for them this is the
// whole rule.
func NormalizeEmail(email string) string {
	email = strings.TrimSpace(email)
	for i := 0; i < len(email); i++ {
		if 'A' <= email[i] && email[i] <= 'Z' {
			return strings.Map(func(r rune) rune {
				if 'A' <= r && r <= 'Z' {
					return r + 'a' - 'A'
				}
				return r
			}, email)
		}
	}
	return email
}

// Clock tells the time; tests inject a fake one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }
