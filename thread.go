package gatehouse

import (
	"context"
	"encoding/json"
	"time"
)

// A chat thread is one conversation of one subject in one tenant: its
// messages in order and the documents attached to them. Threads are never
// visible across owners or tenants; the chat engine decides who may read
// or write one (chat.view, chat.write) through the service, and the store
// only keeps them.

// MessageRole says who wrote a chat message.
type MessageRole string

// Message roles, as a chat-completions model reads them.
const (
	RoleUser      MessageRole = "user"
	RoleAssistant MessageRole = "assistant"
	// RoleTool is a tool's result (or its refusal) for one tool call of
	// the assistant message before it.
	RoleTool MessageRole = "tool"
)

// ToolCallStatus is where a tool call of a conversation stands.
type ToolCallStatus string

// Tool call statuses of a RoleTool message.
const (
	// ToolCallDone: the tool ran (or failed) and Content is its result.
	ToolCallDone ToolCallStatus = "done"
	// ToolCallDenied: the one door refused the call; Content is the
	// refusal the model reads and Reason its code.
	ToolCallDenied ToolCallStatus = "denied"
	// ToolCallPending: the call is an agent action awaiting a human's
	// confirmation (ActionID); a later message for the same ToolCallID
	// settles it.
	ToolCallPending ToolCallStatus = "pending"
)

// Thread is a conversation.
type Thread struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// Owner is the subject who started it, "user:…" or "agent:…".
	Owner string `json:"owner"`
	Title string `json:"title"`
	// Messages counts the thread's messages; LastSeq is the newest one's.
	Messages  int64     `json:"messages"`
	LastSeq   int64     `json:"last_seq"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate reports a thread that cannot be stored.
func (t *Thread) Validate() error {
	switch {
	case t.ID == "" || t.Tenant == "" || t.Owner == "":
		return Invalidf("thread %q: id, tenant and owner are required", t.ID)
	case t.CreatedAt.IsZero():
		return Invalidf("thread %s: no creation time", t.ID)
	case len(t.Title) > MaxThreadTitle:
		return Invalidf("thread %s: the title is longer than %d bytes", t.ID, MaxThreadTitle)
	}
	return nil
}

// MaxThreadTitle bounds a thread's title, in bytes.
const MaxThreadTitle = 200

// ToolCall is one call of a tool an assistant message asks for.
type ToolCall struct {
	// ID is the model's id of the call, unique within the message.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Arguments is the JSON object the model wrote, as it wrote it.
	Arguments json.RawMessage `json:"arguments"`
}

// Message is one turn of a thread.
type Message struct {
	ID       string      `json:"id"`
	ThreadID string      `json:"thread_id"`
	Seq      int64       `json:"seq"`
	Role     MessageRole `json:"role"`
	// Author is the subject who wrote a user message.
	Author  string `json:"author,omitempty"`
	Content string `json:"content"`
	// ToolCalls are an assistant message's calls.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID, ToolName, Status, Reason and ActionID describe a RoleTool
	// message: the call it answers, how it stands, a denial's reason code
	// and the agent action it reserved.
	ToolCallID string         `json:"tool_call_id,omitempty"`
	ToolName   string         `json:"tool_name,omitempty"`
	Status     ToolCallStatus `json:"status,omitempty"`
	Reason     Reason         `json:"reason,omitempty"`
	ActionID   string         `json:"action_id,omitempty"`
	// Attachments are the ids of the attachments a user message carries.
	Attachments []string  `json:"attachments,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Validate reports a message that cannot be stored.
func (m *Message) Validate() error {
	switch {
	case m.ID == "" || m.ThreadID == "":
		return Invalidf("message %q: id and thread are required", m.ID)
	case m.CreatedAt.IsZero():
		return Invalidf("message %s: no creation time", m.ID)
	}
	switch m.Role {
	case RoleUser, RoleAssistant:
		if m.ToolCallID != "" || m.Status != "" {
			return Invalidf("message %s: a %s message answers no tool call", m.ID, m.Role)
		}
	case RoleTool:
		switch {
		case m.ToolCallID == "" || m.ToolName == "":
			return Invalidf("message %s: a tool message needs its tool call and tool", m.ID)
		case m.Status != ToolCallDone && m.Status != ToolCallDenied && m.Status != ToolCallPending:
			return Invalidf("message %s: unknown tool call status %q", m.ID, m.Status)
		case m.Status == ToolCallPending && m.ActionID == "":
			return Invalidf("message %s: a pending tool call needs its action", m.ID)
		}
	default:
		return Invalidf("message %s: unknown role %q", m.ID, m.Role)
	}
	if len(m.Attachments) > 0 && m.Role != RoleUser {
		return Invalidf("message %s: only a user message carries attachments", m.ID)
	}
	for _, c := range m.ToolCalls {
		if c.ID == "" || c.Name == "" {
			return Invalidf("message %s: a tool call needs an id and a name", m.ID)
		}
		if len(c.Arguments) > 0 && !json.Valid(c.Arguments) {
			return Invalidf("message %s: tool call %s: the arguments are not valid JSON", m.ID, c.ID)
		}
	}
	return nil
}

// Attachment is a document a user uploaded into a thread. It belongs to
// the thread's owner and tenant; MessageID is empty until a message
// carries it.
type Attachment struct {
	ID        string `json:"id"`
	ThreadID  string `json:"thread_id"`
	MessageID string `json:"message_id,omitempty"`
	Name      string `json:"name"`
	MIME      string `json:"mime"`
	Size      int64  `json:"size"`
	// SHA256 is the hex digest of Data.
	SHA256    string    `json:"sha256"`
	Data      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// Validate reports an attachment that cannot be stored.
func (a *Attachment) Validate() error {
	switch {
	case a.ID == "" || a.ThreadID == "" || a.Name == "" || a.MIME == "":
		return Invalidf("attachment %q: id, thread, name and MIME type are required", a.ID)
	case a.Size != int64(len(a.Data)):
		return Invalidf("attachment %s: size %d is not the data's %d bytes", a.ID, a.Size, len(a.Data))
	case a.CreatedAt.IsZero():
		return Invalidf("attachment %s: no creation time", a.ID)
	}
	return nil
}

// ThreadFilter selects threads: those of Tenant (required) and, when set,
// of Owner, most recently updated first, at most Limit (0: the store's
// default of 100).
type ThreadFilter struct {
	Tenant string
	Owner  string
	Limit  int
}

// ThreadStore keeps chat threads, their messages and attachments. Every
// write is one transaction.
type ThreadStore interface {
	// CreateThread stores a new thread (Messages and LastSeq are ignored);
	// ErrConflict if its id is taken, ErrInvalid if it fails Validate.
	CreateThread(ctx context.Context, t Thread) error
	// GetThread returns the thread with id; ErrNotFound if there is none.
	GetThread(ctx context.Context, id string) (Thread, error)
	// ListThreads returns the threads f selects.
	ListThreads(ctx context.Context, f ThreadFilter) ([]Thread, error)
	// RenameThread sets a thread's title and UpdatedAt; ErrNotFound for
	// an unknown id.
	RenameThread(ctx context.Context, id, title string, at time.Time) error
	// DeleteThread deletes a thread with its messages and attachments;
	// ErrNotFound for an unknown id.
	DeleteThread(ctx context.Context, id string) error
	// AppendMessages appends msgs, in order, to their thread (all of the
	// same ThreadID), assigning each the next Seq (filled into msgs), links
	// the attachments each names to it and sets the thread's UpdatedAt to
	// the last message's CreatedAt. ErrNotFound for an unknown thread;
	// ErrInvalid, storing nothing, for a message that fails Validate, a
	// taken message id, or an attachment that is not the thread's or is
	// already linked to a message.
	AppendMessages(ctx context.Context, msgs []Message) error
	// Messages returns the thread's messages with Seq > after, in Seq
	// order, at most limit (0: all). ErrNotFound for an unknown thread.
	Messages(ctx context.Context, threadID string, after int64, limit int) ([]Message, error)
	// PutAttachment stores an attachment of an existing thread, not yet
	// linked to a message; ErrNotFound for an unknown thread, ErrConflict
	// for a taken id, ErrInvalid if it fails Validate.
	PutAttachment(ctx context.Context, a Attachment) error
	// GetAttachment returns the attachment with id, with its data;
	// ErrNotFound if there is none.
	GetAttachment(ctx context.Context, id string) (Attachment, error)
}
