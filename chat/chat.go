// Package chat is Gatehouse's conversation engine: threads of messages and
// attachments, and the agent loop that gives a user's message to a Model
// with only the tools the user may use, checks every tool call again
// through the one door when the model makes it, runs allowed calls through
// an Executor, and waits for a human where an agent action needs a
// confirmation.
//
// The engine decides nothing itself: every question (may this user open
// the chat, read or write in it, call this tool with these arguments) goes
// to a Decider, which *service.Service implements. It keeps threads in a
// gatehouse.ThreadStore. Transports (the WebSocket and REST routes of
// package http) turn frames into Commands and Events into frames; the
// engine has no network code.
package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/service"
)

// Decider is the one door as the chat uses it; *service.Service
// implements it.
type Decider interface {
	Evaluate(ctx context.Context, caller gatehouse.Caller, q gatehouse.Question) (gatehouse.Answer, error)
	AuthorizeToolCall(ctx context.Context, caller gatehouse.Caller, q gatehouse.Question, idempotencyKey string) (gatehouse.Answer, error)
	CallableTools(ctx context.Context, caller gatehouse.Caller, subject, onBehalfOf gatehouse.SubjectRef, tenant string, names []string) ([]string, error)
	Effective(subject gatehouse.SubjectRef, tenant string) (gatehouse.Effective, error)
	AccessPermission() string
	Tools() (int64, []service.ToolInfo)
	TenantActions(tenant, action, lang string) (int64, []service.ActionPolicyText, error)
	GetAction(ctx context.Context, caller gatehouse.Caller, id string) (gatehouse.ActionRecord, error)
	ConfirmAction(ctx context.Context, caller gatehouse.Caller, id string) (gatehouse.ActionRecord, error)
	CancelAction(ctx context.Context, caller gatehouse.Caller, id string) (gatehouse.ActionRecord, error)
	ActionExecuted(ctx context.Context, caller gatehouse.Caller, id string) (gatehouse.ActionRecord, error)
	ActionFailed(ctx context.Context, caller gatehouse.Caller, id, message string) (gatehouse.ActionRecord, error)
	RecordToolCall(ctx context.Context, caller gatehouse.Caller, c service.ToolCall)
	Subscribe(ctx context.Context) <-chan gatehouse.Event
	Now() time.Time
}

// Default permissions of seed 002's chat module.
const (
	DefaultViewPermission  = "chat.view"
	DefaultWritePermission = "chat.write"
)

// Config configures an Engine. Decider, Threads, Model, Executor and
// Catalog are required.
type Config struct {
	Decider  Decider
	Threads  gatehouse.ThreadStore
	Model    Model
	Executor Executor
	Catalog  *locale.Catalog
	Logger   *slog.Logger

	// ViewPermission is needed to list and read threads and preview
	// attachments; WritePermission to start threads, send messages,
	// upload, rename and delete. ListOthersPermission, when set, lets its
	// holders list (never read) other users' threads in a tenant.
	ViewPermission       string
	WritePermission      string
	ListOthersPermission string

	// System is the model's system prompt.
	System string
	// MaxToolCalls caps the tool calls of one turn (default 8): a model
	// that loops is stopped.
	MaxToolCalls int
	// ModelTimeout bounds one model call (default 60 s), ToolTimeout one
	// tool execution (default 30 s).
	ModelTimeout time.Duration
	ToolTimeout  time.Duration
	// MaxMessageBytes bounds a user message (default 32 KiB).
	MaxMessageBytes int
	// MaxAttachmentBytes bounds an attachment (default 10 MiB) and
	// AttachmentTypes are the MIME types accepted (default
	// DefaultAttachmentTypes).
	MaxAttachmentBytes int64
	AttachmentTypes    []string
	// History is how many of a thread's newest messages the model reads
	// (default 100).
	History int

	// OnToolCall, when set, is told the outcome of every tool call:
	// allowed, denied, pending, failed (for metrics).
	OnToolCall func(tool, outcome string)
}

// DefaultAttachmentTypes are the attachment MIME types accepted by default.
var DefaultAttachmentTypes = []string{"text/plain", "text/markdown", "text/csv", "application/json",
	"application/pdf", "image/png", "image/jpeg"}

func (c *Config) defaults() error {
	if c.Decider == nil || c.Threads == nil || c.Model == nil || c.Executor == nil || c.Catalog == nil {
		return gatehouse.Invalidf("chat: a decider, a thread store, a model, an executor and a catalog are required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ViewPermission == "" {
		c.ViewPermission = DefaultViewPermission
	}
	if c.WritePermission == "" {
		c.WritePermission = DefaultWritePermission
	}
	if c.MaxToolCalls <= 0 {
		c.MaxToolCalls = 8
	}
	if c.ModelTimeout <= 0 {
		c.ModelTimeout = time.Minute
	}
	if c.ToolTimeout <= 0 {
		c.ToolTimeout = 30 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 32 << 10
	}
	if c.MaxAttachmentBytes <= 0 {
		c.MaxAttachmentBytes = 10 << 20
	}
	if len(c.AttachmentTypes) == 0 {
		c.AttachmentTypes = DefaultAttachmentTypes
	}
	if c.History <= 0 {
		c.History = 100
	}
	return nil
}

// Engine runs conversations. One Engine serves every session of a server;
// it is safe for concurrent use.
type Engine struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[*Session]struct{}
	// turns holds the threads with a turn in progress; again is set when
	// the thread should be advanced once more after the current turn
	// (a confirmation arrived while it was finishing).
	turns map[string]*turnState
	// langs remembers the language a thread was last written in, for
	// turns resumed by a confirmation.
	langs map[string]string
	// outcomes count tool calls by ToolOutcomes.
	outcomes [4]atomic.Int64
}

type turnState struct{ again bool }

// New returns an engine and starts following the service's change feed:
// policy changes refresh every session's capabilities, and a settled
// confirmation resumes its conversation. Close stops it.
func New(cfg Config) (*Engine, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{cfg: cfg, ctx: ctx, cancel: cancel, sessions: map[*Session]struct{}{},
		turns: map[string]*turnState{}, langs: map[string]string{}}
	events := cfg.Decider.Subscribe(ctx)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.follow(events)
	}()
	return e, nil
}

// Close stops the engine: turns in progress are cancelled (a pending
// confirmation stays stored and resumes under the next engine) and Close
// waits for them.
func (e *Engine) Close() {
	e.cancel()
	e.wg.Wait()
}

// follow reacts to the change feed until the engine closes.
func (e *Engine) follow(events <-chan gatehouse.Event) {
	for ev := range events {
		switch ev.Kind {
		case gatehouse.EventPolicy, gatehouse.EventResync:
			e.refreshAll()
		case gatehouse.EventAction:
			if ev.Action != nil {
				e.actionMoved(*ev.Action)
			}
		}
	}
}

// MaxAttachmentBytes is the largest attachment Upload accepts.
func (e *Engine) MaxAttachmentBytes() int64 { return e.cfg.MaxAttachmentBytes }

// Actor is who does something in the chat, in which tenant and language.
type Actor struct {
	Caller    gatehouse.Caller
	Tenant    string
	Lang      string
	RequestID string
}

func (a Actor) subject() gatehouse.SubjectRef { return a.Caller.Subject }

// Error is a chat operation refused or failed, with its stable code and
// a localized message. Code is a gatehouse.Reason for a denial
// (permission_missing, invalid_request, …) or an error code (not_found,
// payload_too_large, unsupported_media_type, internal, …).
type Error struct {
	Code    string
	Message string
	// Permission is the permission a denial is about.
	Permission string
	err        error
}

func (e *Error) Error() string {
	if e.err != nil {
		return e.Code + ": " + e.err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the gatehouse sentinel the error is an instance of
// (ErrForbidden, ErrNotFound, ErrInvalid, ErrConflict, ErrUnavailable),
// for transports that map errors to statuses.
func (e *Error) Unwrap() error { return e.err }

// Codes of chat errors that are not decision reasons.
const (
	CodeNotFound       = "not_found"
	CodeTooLarge       = "payload_too_large"
	CodeUnsupported    = "unsupported_media_type"
	CodeFailed         = "internal"
	CodeRateLimited    = "rate_limited"
	CodeUnknownCommand = "unknown_event"
	CodeBadFrame       = "bad_frame"
)

func (e *Engine) text(lang, id string, data any) string { return e.cfg.Catalog.Text(lang, id, data) }

// denied is the error of an operation the one door refused.
func (e *Engine) denied(a Actor, op string, ans gatehouse.Answer) *Error {
	perm := ans.DeniedPermission
	if perm == "" {
		perm = ans.Permission
	}
	msg := e.text(a.Lang, "chat.operation_denied", map[string]string{"Operation": e.text(a.Lang, "chat.op."+op, nil), "Permission": perm})
	if ans.Reason == gatehouse.ReasonPlanRequired || ans.Reason == gatehouse.ReasonTenantNotVisible {
		msg = ans.Message
	}
	return &Error{Code: string(ans.Reason), Message: msg, Permission: perm,
		err: gatehouse.Forbiddenf(ans.Reason, "chat: %s needs %s: %s", op, perm, ans.Reason)}
}

// failed is the error of an operation the engine could not carry out.
func (e *Engine) failed(a Actor, what string, err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	e.cfg.Logger.Error("chat: "+what, "subject", a.subject().String(), "tenant", a.Tenant, "err", err)
	return &Error{Code: CodeFailed, Message: e.text(a.Lang, "chat.failed", nil), err: fmt.Errorf("chat: %s: %w", what, err)}
}

func (e *Engine) notFound(a Actor, id string) *Error {
	return &Error{Code: CodeNotFound, Message: e.text(a.Lang, "chat.thread_not_found", nil),
		err: gatehouse.NotFoundf("thread %q", id)}
}

func (e *Engine) invalid(a Actor, id string, data any) *Error {
	code := string(gatehouse.ReasonInvalidRequest)
	switch id {
	case "chat.attachment_too_large", "chat.message_too_long":
		code = CodeTooLarge
	case "chat.attachment_type":
		code = CodeUnsupported
	}
	msg := e.text(a.Lang, id, data)
	return &Error{Code: code, Message: msg, err: gatehouse.Invalidf("chat: %s", msg)}
}

// may asks the one door whether a may use permission in its tenant, for
// operation op; nil when allowed.
func (e *Engine) may(ctx context.Context, a Actor, permission, op string) error {
	ans, err := e.cfg.Decider.Evaluate(ctx, a.Caller, gatehouse.Question{
		Request: gatehouse.Request{Subject: a.subject(), Tenant: a.Tenant, Permission: permission},
		Lang:    a.Lang, Surface: "chat." + op, RequestID: a.RequestID})
	if err != nil {
		return e.failed(a, "check "+permission, err)
	}
	if !ans.Allowed {
		return e.denied(a, op, ans)
	}
	return nil
}

// ownThread returns thread id if it is a's in a's tenant. Any other
// thread is not found, so that ids of other users' threads reveal nothing.
func (e *Engine) ownThread(ctx context.Context, a Actor, id string) (gatehouse.Thread, error) {
	t, err := e.cfg.Threads.GetThread(ctx, id)
	switch {
	case errors.Is(err, gatehouse.ErrNotFound):
		return t, e.notFound(a, id)
	case err != nil:
		return t, e.failed(a, "read thread", err)
	case t.Owner != a.subject().String() || t.Tenant != a.Tenant:
		return t, e.notFound(a, id)
	}
	return t, nil
}

// Capabilities is what a chat frontend shows and hides for a user in a
// tenant (seed 000's AIState.userPermissions): the effective permissions,
// the plan and the features it locks, every tool's decision and the
// frontend flags, canAccessChat among them.
type Capabilities struct {
	gatehouse.Effective
	CanView  bool `json:"can_view"`
	CanWrite bool `json:"can_write"`
}

// Capabilities returns a's capabilities, from one policy snapshot.
func (e *Engine) Capabilities(ctx context.Context, a Actor) (Capabilities, error) {
	eff, err := e.cfg.Decider.Effective(a.subject(), a.Tenant)
	if err != nil {
		return Capabilities{}, err
	}
	c := Capabilities{Effective: eff}
	for i := range c.Tools {
		if ta := &c.Tools[i]; !ta.Allowed {
			ta.Message = e.cfg.Catalog.Reason(a.Lang, gatehouse.Decision{Reason: ta.Reason, Plan: ta.Plan},
				locale.Args{Subject: a.subject().String(), Permission: ta.Tool, Tenant: a.Tenant})
		}
	}
	c.CanView = slices.Contains(eff.Permissions, e.cfg.ViewPermission)
	c.CanWrite = slices.Contains(eff.Permissions, e.cfg.WritePermission)
	if _, ok := c.Flags["canAccessChat"]; !ok {
		access := e.cfg.Decider.AccessPermission()
		if access == "" {
			access = e.cfg.ViewPermission
		}
		c.Flags["canAccessChat"] = slices.Contains(eff.Permissions, access)
	}
	return c, nil
}

// remember notes the language thread was last written in.
func (e *Engine) remember(thread, lang string) {
	e.mu.Lock()
	e.langs[thread] = lang
	e.mu.Unlock()
}

func (e *Engine) lang(thread string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if l := e.langs[thread]; l != "" {
		return l
	}
	return locale.Languages[0]
}
