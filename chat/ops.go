package chat

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"mime"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// The thread operations, shared by the WebSocket commands and the REST
// routes. Each asks the one door first: chat.view to read, chat.write to
// change.

// newID returns a random id with prefix.
func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// needTenant refuses an operation without a tenant: threads live in one.
func (e *Engine) needTenant(a Actor) error {
	if a.Tenant == "" {
		return &Error{Code: string(gatehouse.ReasonInvalidRequest), Message: e.text(a.Lang, "reason.invalid_request", nil),
			err: gatehouse.Invalidf("chat: a tenant is required")}
	}
	return nil
}

// ListThreads returns a's threads in its tenant, newest first; with owner
// set to another subject, that subject's threads, for holders of
// ListOthersPermission (titles only: reading them is still refused).
func (e *Engine) ListThreads(ctx context.Context, a Actor, owner string) ([]gatehouse.Thread, error) {
	if err := e.needTenant(a); err != nil {
		return nil, err
	}
	if err := e.may(ctx, a, e.cfg.ViewPermission, "read"); err != nil {
		return nil, err
	}
	if owner == "" || owner == a.subject().String() {
		owner = a.subject().String()
	} else {
		if e.cfg.ListOthersPermission == "" {
			return nil, e.denied(a, "list_others", gatehouse.Answer{Reason: gatehouse.ReasonPermissionMissing})
		}
		if err := e.may(ctx, a, e.cfg.ListOthersPermission, "list_others"); err != nil {
			return nil, err
		}
	}
	ts, err := e.cfg.Threads.ListThreads(ctx, gatehouse.ThreadFilter{Tenant: a.Tenant, Owner: owner})
	if err != nil {
		return nil, e.failed(a, "list threads", err)
	}
	if ts == nil {
		ts = []gatehouse.Thread{}
	}
	return ts, nil
}

// OpenThread returns a's thread id and its messages after seq after.
func (e *Engine) OpenThread(ctx context.Context, a Actor, id string, after int64) (gatehouse.Thread, []gatehouse.Message, error) {
	if err := e.may(ctx, a, e.cfg.ViewPermission, "read"); err != nil {
		return gatehouse.Thread{}, nil, err
	}
	t, err := e.ownThread(ctx, a, id)
	if err != nil {
		return t, nil, err
	}
	msgs, err := e.cfg.Threads.Messages(ctx, id, after, 0)
	if err != nil {
		return t, nil, e.failed(a, "read messages", err)
	}
	// A confirmation settled while no turn ran (another instance, a
	// restart) resumes now.
	e.resumeIfSettled(t, msgs)
	return t, msgs, nil
}

// StartThread creates a thread for a in its tenant, titled after the
// first message; with content or attachments it is also the thread's
// first message and the agent answers it.
func (e *Engine) StartThread(ctx context.Context, a Actor, title, content string) (gatehouse.Thread, error) {
	if err := e.needTenant(a); err != nil {
		return gatehouse.Thread{}, err
	}
	if err := e.may(ctx, a, e.cfg.WritePermission, "write"); err != nil {
		return gatehouse.Thread{}, err
	}
	if err := e.checkContent(a, content, true); err != nil {
		return gatehouse.Thread{}, err
	}
	if title = strings.TrimSpace(title); title == "" {
		title = titleOf(content)
	}
	if title == "" {
		title = e.text(a.Lang, "chat.thread_untitled", nil)
	}
	if len(title) > gatehouse.MaxThreadTitle {
		title = truncate(title, gatehouse.MaxThreadTitle)
	}
	now := e.cfg.Decider.Now()
	t := gatehouse.Thread{ID: newID("th_"), Tenant: a.Tenant, Owner: a.subject().String(), Title: title, CreatedAt: now, UpdatedAt: now}
	if err := e.cfg.Threads.CreateThread(ctx, t); err != nil {
		return t, e.failed(a, "create thread", err)
	}
	if strings.TrimSpace(content) != "" {
		if _, err := e.post(ctx, a, t, content, nil); err != nil {
			return t, err
		}
	}
	return t, nil
}

// titleOf is a thread title from its first message: its first line,
// shortened.
func titleOf(content string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(content), "\n")
	return truncate(strings.TrimSpace(line), 60)
}

// truncate shortens s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// checkContent refuses a message that is too long or, unless empty is
// allowed, empty.
func (e *Engine) checkContent(a Actor, content string, empty bool) error {
	switch {
	case len(content) > e.cfg.MaxMessageBytes:
		return e.invalid(a, "chat.message_too_long", map[string]int{"Max": e.cfg.MaxMessageBytes})
	case !utf8.ValidString(content):
		return e.invalid(a, "chat.bad_frame", map[string]string{"Problem": "the message is not valid UTF-8"})
	case !empty && strings.TrimSpace(content) == "":
		return e.invalid(a, "chat.empty_message", nil)
	}
	return nil
}

// SubmitMessage appends a's message, with the attachments it names, to
// a's thread and starts the agent's answer.
func (e *Engine) SubmitMessage(ctx context.Context, a Actor, threadID, content string, attachments []string) (gatehouse.Message, error) {
	if err := e.may(ctx, a, e.cfg.WritePermission, "write"); err != nil {
		return gatehouse.Message{}, err
	}
	if err := e.checkContent(a, content, len(attachments) > 0); err != nil {
		return gatehouse.Message{}, err
	}
	if len(attachments) == 0 && strings.TrimSpace(content) == "" {
		return gatehouse.Message{}, e.invalid(a, "chat.empty_message", nil)
	}
	t, err := e.ownThread(ctx, a, threadID)
	if err != nil {
		return gatehouse.Message{}, err
	}
	return e.post(ctx, a, t, content, attachments)
}

// post stores a user message in t and has the agent answer it: now, or
// right after the turn in progress.
func (e *Engine) post(ctx context.Context, a Actor, t gatehouse.Thread, content string, attachments []string) (gatehouse.Message, error) {
	m := gatehouse.Message{ID: newID("msg_"), ThreadID: t.ID, Role: gatehouse.RoleUser, Author: a.subject().String(),
		Content: content, Attachments: attachments, CreatedAt: e.cfg.Decider.Now()}
	batch := []gatehouse.Message{m}
	if err := e.cfg.Threads.AppendMessages(ctx, batch); err != nil {
		if errors.Is(err, gatehouse.ErrInvalid) {
			return m, &Error{Code: string(gatehouse.ReasonInvalidRequest), Message: e.text(a.Lang, "chat.attachment_not_found", nil), err: err}
		}
		return m, e.failed(a, "store message", err)
	}
	m = batch[0]
	e.remember(t.ID, a.Lang)
	e.emit(t.ID, Event{Type: EventMessage, Data: MessageData{Message: m}})
	e.wake(t, a)
	return m, nil
}

// RenameThread sets the title of a's thread.
func (e *Engine) RenameThread(ctx context.Context, a Actor, id, title string) (gatehouse.Thread, error) {
	if err := e.may(ctx, a, e.cfg.WritePermission, "write"); err != nil {
		return gatehouse.Thread{}, err
	}
	title = strings.TrimSpace(title)
	if title == "" || len(title) > gatehouse.MaxThreadTitle || !utf8.ValidString(title) {
		return gatehouse.Thread{}, &Error{Code: string(gatehouse.ReasonInvalidRequest), Message: e.text(a.Lang, "reason.invalid_request", nil),
			err: gatehouse.Invalidf("chat: a title is 1 to %d bytes of UTF-8", gatehouse.MaxThreadTitle)}
	}
	t, err := e.ownThread(ctx, a, id)
	if err != nil {
		return t, err
	}
	now := e.cfg.Decider.Now()
	if err := e.cfg.Threads.RenameThread(ctx, id, title, now); err != nil {
		return t, e.failed(a, "rename thread", err)
	}
	t.Title, t.UpdatedAt = title, now
	return t, nil
}

// DeleteThread deletes a's thread with its messages and attachments.
func (e *Engine) DeleteThread(ctx context.Context, a Actor, id string) error {
	if err := e.may(ctx, a, e.cfg.WritePermission, "write"); err != nil {
		return err
	}
	if _, err := e.ownThread(ctx, a, id); err != nil {
		return err
	}
	if err := e.cfg.Threads.DeleteThread(ctx, id); err != nil && !errors.Is(err, gatehouse.ErrNotFound) {
		return e.failed(a, "delete thread", err)
	}
	return nil
}

// Upload stores an attachment in a's thread, for a later message to carry.
func (e *Engine) Upload(ctx context.Context, a Actor, threadID, name, mimeType string, data []byte) (gatehouse.Attachment, error) {
	if err := e.may(ctx, a, e.cfg.WritePermission, "write"); err != nil {
		return gatehouse.Attachment{}, err
	}
	if int64(len(data)) > e.cfg.MaxAttachmentBytes {
		return gatehouse.Attachment{}, e.invalid(a, "chat.attachment_too_large", map[string]int64{"Max": e.cfg.MaxAttachmentBytes})
	}
	mt, _, err := mime.ParseMediaType(mimeType)
	if err != nil || !slices.Contains(e.cfg.AttachmentTypes, mt) {
		return gatehouse.Attachment{}, e.invalid(a, "chat.attachment_type", map[string]string{"MIME": mimeType})
	}
	if textLike(mt) && !utf8.Valid(data) {
		return gatehouse.Attachment{}, e.invalid(a, "chat.attachment_type", map[string]string{"MIME": mimeType})
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 255 || !utf8.ValidString(name) || strings.ContainsAny(name, "/\\\x00") {
		return gatehouse.Attachment{}, &Error{Code: string(gatehouse.ReasonInvalidRequest), Message: e.text(a.Lang, "reason.invalid_request", nil),
			err: gatehouse.Invalidf("chat: an attachment name is 1 to 255 bytes without slashes")}
	}
	if _, err := e.ownThread(ctx, a, threadID); err != nil {
		return gatehouse.Attachment{}, err
	}
	att := gatehouse.Attachment{ID: newID("att_"), ThreadID: threadID, Name: name, MIME: mt, Size: int64(len(data)),
		SHA256: sha256Hex(data), Data: data, CreatedAt: e.cfg.Decider.Now()}
	if err := e.cfg.Threads.PutAttachment(ctx, att); err != nil {
		return att, e.failed(a, "store attachment", err)
	}
	att.Data = nil
	return att, nil
}

// textLike reports whether attachments of MIME type mt are text the
// model can read and a preview can show.
func textLike(mt string) bool {
	return strings.HasPrefix(mt, "text/") || mt == "application/json"
}

// Preview returns an attachment of a's thread and, for a text-like type,
// its text.
func (e *Engine) Preview(ctx context.Context, a Actor, id string) (gatehouse.Attachment, string, error) {
	if err := e.may(ctx, a, e.cfg.ViewPermission, "read"); err != nil {
		return gatehouse.Attachment{}, "", err
	}
	att, err := e.cfg.Threads.GetAttachment(ctx, id)
	if errors.Is(err, gatehouse.ErrNotFound) {
		return att, "", &Error{Code: CodeNotFound, Message: e.text(a.Lang, "chat.attachment_not_found", nil), err: err}
	}
	if err != nil {
		return att, "", e.failed(a, "read attachment", err)
	}
	if _, err := e.ownThread(ctx, a, att.ThreadID); err != nil {
		return gatehouse.Attachment{}, "", &Error{Code: CodeNotFound, Message: e.text(a.Lang, "chat.attachment_not_found", nil),
			err: gatehouse.NotFoundf("attachment %q", id)}
	}
	text := ""
	if textLike(att.MIME) {
		text = string(att.Data)
	}
	att.Data = nil
	return att, text, nil
}

// Confirm confirms a pending agent action of a's conversation (or one a
// may approve); the conversation resumes with the tool's result.
func (e *Engine) Confirm(ctx context.Context, a Actor, actionID string) (gatehouse.ActionRecord, error) {
	rec, err := e.cfg.Decider.ConfirmAction(ctx, a.Caller, actionID)
	if err != nil {
		return rec, e.actionError(a, err)
	}
	e.actionMoved(rec)
	return rec, nil
}

// Cancel cancels a pending agent action; the model is told it was not done.
func (e *Engine) Cancel(ctx context.Context, a Actor, actionID string) (gatehouse.ActionRecord, error) {
	rec, err := e.cfg.Decider.CancelAction(ctx, a.Caller, actionID)
	if err != nil {
		return rec, e.actionError(a, err)
	}
	e.actionMoved(rec)
	return rec, nil
}

// actionError reports a refused confirmation with its code.
func (e *Engine) actionError(a Actor, err error) *Error {
	code := gatehouse.ErrorCode(err)
	return &Error{Code: code, Message: e.cfg.Catalog.Error(a.Lang, err), err: err}
}
