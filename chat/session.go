package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/gatehouse/gatehouse"
)

// ErrCheckFailed is returned by Open when the access check itself failed
// (store down, timeout): the chat stays closed.
var ErrCheckFailed = errors.New("chat: the permission check failed")

// Session is one connected client: an actor and where its events go. It
// watches the threads it opened or wrote in.
type Session struct {
	e     *Engine
	actor Actor
	out   func(Event)

	mu       sync.Mutex
	watching map[string]bool
	caps     []byte
}

// Open checks that a may use the chat at all (the policy's access
// permission, else the view permission) and returns its session, which
// has been sent its capabilities. A denial is an *Error with the reason;
// a check that could not be made is ErrCheckFailed. send must not block
// for long: it is called from the engine's goroutines.
func (e *Engine) Open(ctx context.Context, a Actor, send func(Event)) (*Session, error) {
	perm := e.cfg.Decider.AccessPermission()
	if perm == "" {
		perm = e.cfg.ViewPermission
	}
	ans, err := e.cfg.Decider.Evaluate(ctx, a.Caller, gatehouse.Question{
		Request: gatehouse.Request{Subject: a.subject(), Tenant: a.Tenant, Permission: perm},
		Lang:    a.Lang, Surface: "chat.connect", RequestID: a.RequestID})
	switch {
	case err != nil:
		e.cfg.Logger.Error("chat: access check", "subject", a.subject().String(), "err", err)
		return nil, errors.Join(ErrCheckFailed, err)
	case ans.Reason == gatehouse.ReasonInternalError:
		return nil, ErrCheckFailed
	case !ans.Allowed:
		denied := ans.DeniedPermission
		if denied == "" {
			denied = perm
		}
		msg := e.text(a.Lang, "chat.access_denied", nil)
		if ans.Reason == gatehouse.ReasonTenantNotVisible || ans.Reason == gatehouse.ReasonUnknownTenant || ans.Reason == gatehouse.ReasonPlanRequired {
			msg += " " + ans.Message
		}
		return nil, &Error{Code: string(ans.Reason), Message: msg, Permission: denied,
			err: gatehouse.Forbiddenf(ans.Reason, "chat: %s may not use the chat", a.subject())}
	}
	s := &Session{e: e, actor: a, out: send, watching: map[string]bool{}}
	if err := s.refresh(ctx); err != nil {
		e.cfg.Logger.Error("chat: capabilities", "subject", a.subject().String(), "err", err)
		return nil, errors.Join(ErrCheckFailed, err)
	}
	e.mu.Lock()
	e.sessions[s] = struct{}{}
	e.mu.Unlock()
	return s, nil
}

// Actor returns the session's actor.
func (s *Session) Actor() Actor { return s.actor }

// Close detaches the session; the conversations it started go on.
func (s *Session) Close() {
	s.e.mu.Lock()
	delete(s.e.sessions, s)
	s.e.mu.Unlock()
}

func (s *Session) send(ev Event) { s.out(ev) }

func (s *Session) watch(thread string) {
	s.mu.Lock()
	s.watching[thread] = true
	s.mu.Unlock()
}

func (s *Session) unwatch(thread string) {
	s.mu.Lock()
	delete(s.watching, thread)
	s.mu.Unlock()
}

func (s *Session) watches(thread string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watching[thread]
}

// refresh sends the session's capabilities if they changed.
func (s *Session) refresh(ctx context.Context) error {
	c, err := s.e.Capabilities(ctx, s.actor)
	if err != nil {
		return err
	}
	// The version changes with every policy change; the capabilities
	// are sent again only when what they say changed.
	v := c.Version
	c.Version = 0
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	c.Version = v
	s.mu.Lock()
	same := bytes.Equal(b, s.caps)
	s.caps = b
	s.mu.Unlock()
	if !same {
		s.send(Event{Type: EventCapabilities, Data: c})
	}
	return nil
}

// refreshAll refreshes every session's capabilities.
func (e *Engine) refreshAll() {
	e.mu.Lock()
	all := make([]*Session, 0, len(e.sessions))
	for s := range e.sessions {
		all = append(all, s)
	}
	e.mu.Unlock()
	for _, s := range all {
		if err := s.refresh(e.ctx); err != nil {
			e.cfg.Logger.Warn("chat: refresh capabilities", "subject", s.actor.subject().String(), "err", err)
		}
	}
}

// Command is a frame a client sends. Type names the operation; the other
// fields are its arguments.
type Command struct {
	Type      string `json:"type"`
	RequestID string `json:"request_id,omitempty"`
	ThreadID  string `json:"thread_id,omitempty"`
	Title     string `json:"title,omitempty"`
	Content   string `json:"content,omitempty"`
	// Attachments are the ids of uploads a message carries.
	Attachments []string `json:"attachments,omitempty"`
	// After, for open_thread, returns only messages with a greater seq.
	After int64 `json:"after,omitempty"`
	// Owner, for list_threads, lists another subject's threads.
	Owner        string `json:"owner,omitempty"`
	AttachmentID string `json:"attachment_id,omitempty"`
	Name         string `json:"name,omitempty"`
	MIME         string `json:"mime,omitempty"`
	// Data is an upload's content, base64 in JSON.
	Data     []byte `json:"data,omitempty"`
	ActionID string `json:"action_id,omitempty"`
}

// Commands are the command types Handle knows.
var Commands = []string{"list_threads", "open_thread", "start_thread", "submit_message", "rename_thread", "delete_thread",
	"upload_attachment", "open_attachment_preview", "confirm", "cancel", "ping"}

// Handle carries out one command; its answer and any error are events.
func (s *Session) Handle(ctx context.Context, c Command) {
	a := s.actor
	a.RequestID = c.RequestID
	e := s.e
	var err error
	switch c.Type {
	case "list_threads":
		var ts []gatehouse.Thread
		if ts, err = e.ListThreads(ctx, a, c.Owner); err == nil {
			s.send(Event{Type: EventThreads, Data: ThreadsData{Threads: ts, RequestID: c.RequestID}})
		}
	case "open_thread":
		s.watch(c.ThreadID)
		var t gatehouse.Thread
		var msgs []gatehouse.Message
		if t, msgs, err = e.OpenThread(ctx, a, c.ThreadID, c.After); err == nil {
			s.send(Event{Type: EventThread, Data: ThreadData{Thread: t, Messages: msgs, RequestID: c.RequestID}})
		} else {
			s.unwatch(c.ThreadID)
		}
	case "start_thread":
		err = s.start(ctx, a, c)
	case "submit_message":
		s.watch(c.ThreadID)
		_, err = e.SubmitMessage(ctx, a, c.ThreadID, c.Content, c.Attachments)
	case "rename_thread":
		var t gatehouse.Thread
		if t, err = e.RenameThread(ctx, a, c.ThreadID, c.Title); err == nil {
			s.send(Event{Type: EventThreadRenamed, Data: ThreadData{Thread: t, RequestID: c.RequestID}})
		}
	case "delete_thread":
		if err = e.DeleteThread(ctx, a, c.ThreadID); err == nil {
			s.unwatch(c.ThreadID)
			s.send(Event{Type: EventThreadDeleted, Data: ThreadData{Thread: gatehouse.Thread{ID: c.ThreadID}, RequestID: c.RequestID}})
		}
	case "upload_attachment":
		var att gatehouse.Attachment
		if att, err = e.Upload(ctx, a, c.ThreadID, c.Name, c.MIME, c.Data); err == nil {
			s.send(Event{Type: EventAttachment, Data: AttachmentData{Attachment: att, RequestID: c.RequestID}})
		}
	case "open_attachment_preview":
		var att gatehouse.Attachment
		var text string
		if att, text, err = e.Preview(ctx, a, c.AttachmentID); err == nil {
			s.send(Event{Type: EventAttachmentPreview, Data: AttachmentData{Attachment: att, Text: text, RequestID: c.RequestID}})
		}
	case "confirm", "cancel":
		var rec gatehouse.ActionRecord
		if c.Type == "confirm" {
			rec, err = e.Confirm(ctx, a, c.ActionID)
		} else {
			rec, err = e.Cancel(ctx, a, c.ActionID)
		}
		if err == nil {
			thread, _ := chatThread(rec.IdempotencyKey)
			s.send(Event{Type: EventConfirmation, Data: ConfirmationData{ActionID: rec.ID, Action: rec.Action, ToolName: rec.Tool,
				Status: rec.Status, ConversationID: thread}})
		}
	case "ping":
		s.send(Event{Type: EventPong, Data: map[string]string{"request_id": c.RequestID}})
	default:
		err = &Error{Code: CodeUnknownCommand, Message: e.text(a.Lang, "chat.unknown_event", map[string]string{"Type": c.Type})}
	}
	if err != nil {
		s.sendError(c, err)
	}
}

// start creates a thread, watches it and, with content, posts it.
func (s *Session) start(ctx context.Context, a Actor, c Command) error {
	e := s.e
	title := c.Title
	if title == "" {
		title = titleOf(c.Content)
	}
	t, err := e.StartThread(ctx, a, title, "")
	if err != nil {
		return err
	}
	s.watch(t.ID)
	s.send(Event{Type: EventThreadCreated, Data: ThreadData{Thread: t, RequestID: c.RequestID}})
	if c.Content == "" && len(c.Attachments) == 0 {
		return nil
	}
	_, err = e.SubmitMessage(ctx, a, t.ID, c.Content, c.Attachments)
	return err
}

// sendError sends the event for a failed command: permission_error for a
// denial, error for anything else.
func (s *Session) sendError(c Command, err error) {
	var ce *Error
	if !errors.As(err, &ce) {
		ce = s.e.failed(s.actor, c.Type, err)
	}
	typ := EventError
	if errors.Is(ce, gatehouse.ErrForbidden) {
		typ = EventPermissionError
	}
	s.send(Event{Type: typ, Data: ErrorData{Error: ce.Message, Reason: ce.Code, Permission: ce.Permission,
		Command: c.Type, RequestID: c.RequestID, ThreadID: c.ThreadID}})
}

// SendError sends an error event for a frame the transport could not
// read (code CodeBadFrame, CodeRateLimited, …) with a localized message.
func (s *Session) SendError(code, msgID string, data any) {
	s.send(Event{Type: EventError, Data: ErrorData{Error: s.e.text(s.actor.Lang, msgID, data), Reason: code}})
}
