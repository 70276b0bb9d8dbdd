// Package threadrows holds what both stores do alike for
// gatehouse.ThreadStore: checking a call before it reaches the database and
// encoding a message's lists as the JSON text the stores keep.
package threadrows

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
)

// DefaultLimit is how many threads ListThreads returns when the filter
// sets no limit.
const DefaultLimit = 100

// ListLimit checks f and returns how many threads to list.
func ListLimit(f gatehouse.ThreadFilter) (int, error) {
	switch {
	case f.Tenant == "":
		return 0, gatehouse.Invalidf("list threads: the tenant is required")
	case f.Limit < 0:
		return 0, gatehouse.Invalidf("list threads: negative limit %d", f.Limit)
	case f.Limit == 0:
		return DefaultLimit, nil
	}
	return f.Limit, nil
}

// CheckCreate checks a thread CreateThread stores.
func CheckCreate(t gatehouse.Thread) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("create thread: %w", err)
	}
	return nil
}

// UpdatedAt is when a new thread was last updated: its UpdatedAt, or its
// creation when that is unset.
func UpdatedAt(t gatehouse.Thread) time.Time {
	if t.UpdatedAt.IsZero() {
		return t.CreatedAt
	}
	return t.UpdatedAt
}

// CheckRename checks a new title and its time.
func CheckRename(id, title string, at time.Time) error {
	switch {
	case len(title) > gatehouse.MaxThreadTitle:
		return gatehouse.Invalidf("rename thread %s: the title is longer than %d bytes", id, gatehouse.MaxThreadTitle)
	case at.IsZero():
		return gatehouse.Invalidf("rename thread %s: no time", id)
	}
	return nil
}

// CheckAppend checks msgs before AppendMessages reads the store: each must
// pass Validate, all must be of one thread, and no id, of a message or of
// an attachment, may appear twice. It returns the thread's id; "" for no
// messages.
func CheckAppend(msgs []gatehouse.Message) (string, error) {
	if len(msgs) == 0 {
		return "", nil
	}
	thread := msgs[0].ThreadID
	ids := make(map[string]bool, len(msgs))
	attached := make(map[string]bool)
	for i := range msgs {
		m := &msgs[i]
		if err := m.Validate(); err != nil {
			return "", fmt.Errorf("append messages: %w", err)
		}
		if m.ThreadID != thread {
			return "", gatehouse.Invalidf("append messages: message %s is of thread %s, not %s", m.ID, m.ThreadID, thread)
		}
		if ids[m.ID] {
			return "", gatehouse.Invalidf("append messages: message %s appears twice", m.ID)
		}
		ids[m.ID] = true
		for _, a := range m.Attachments {
			if attached[a] {
				return "", gatehouse.Invalidf("append messages: attachment %s is linked twice", a)
			}
			attached[a] = true
		}
	}
	return thread, nil
}

// CheckAttachment checks an attachment PutAttachment stores: it must pass
// Validate and not be linked to a message yet.
func CheckAttachment(a gatehouse.Attachment) error {
	if err := a.Validate(); err != nil {
		return fmt.Errorf("put attachment: %w", err)
	}
	if a.MessageID != "" {
		return gatehouse.Invalidf("put attachment %s: a new attachment is linked to no message, not %s", a.ID, a.MessageID)
	}
	return nil
}

// ToolCall is a gatehouse.ToolCall as stores and backups keep it: the
// arguments as a string of the exact bytes the model wrote, which
// embedding them as JSON would reformat; nil without arguments.
type ToolCall struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Arguments *string `json:"arguments,omitempty"`
}

// FromToolCalls returns calls as they are kept; nil for none.
func FromToolCalls(calls []gatehouse.ToolCall) []ToolCall {
	if len(calls) == 0 {
		return nil
	}
	out := make([]ToolCall, len(calls))
	for i, c := range calls {
		out[i] = ToolCall{ID: c.ID, Name: c.Name}
		if len(c.Arguments) > 0 {
			s := string(c.Arguments)
			out[i].Arguments = &s
		}
	}
	return out
}

// ToToolCalls returns the calls kept as calls; nil for none.
func ToToolCalls(kept []ToolCall) []gatehouse.ToolCall {
	if len(kept) == 0 {
		return nil
	}
	out := make([]gatehouse.ToolCall, len(kept))
	for i, c := range kept {
		out[i] = gatehouse.ToolCall{ID: c.ID, Name: c.Name}
		if c.Arguments != nil {
			out[i].Arguments = json.RawMessage(*c.Arguments)
		}
	}
	return out
}

// EncodeToolCalls is the JSON text of calls as they are kept; nil (NULL)
// for none.
func EncodeToolCalls(calls []gatehouse.ToolCall) (*string, error) {
	return encode(FromToolCalls(calls))
}

// DecodeToolCalls decodes what EncodeToolCalls encoded.
func DecodeToolCalls(text *string) ([]gatehouse.ToolCall, error) {
	var kept []ToolCall
	if err := decode(text, &kept); err != nil {
		return nil, fmt.Errorf("tool calls: %w", err)
	}
	return ToToolCalls(kept), nil
}

// EncodeIDs is the JSON array of ids; nil (NULL) for none.
func EncodeIDs(ids []string) (*string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return encode(ids)
}

// DecodeIDs decodes what EncodeIDs encoded; nil for none.
func DecodeIDs(text *string) ([]string, error) {
	var ids []string
	if err := decode(text, &ids); err != nil {
		return nil, fmt.Errorf("attachment ids: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return ids, nil
}

func encode[T any](v []T) (*string, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// decode reports text that does not decode as corruption: only a store
// wrote it.
func decode(text *string, v any) error {
	if text == nil {
		return nil
	}
	if err := json.Unmarshal([]byte(*text), v); err != nil {
		return fmt.Errorf("%v: %w", err, gatehouse.ErrCorrupt)
	}
	return nil
}
