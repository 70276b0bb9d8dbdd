package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/threadrows"
)

// Chat threads live in chat_threads, chat_messages and chat_attachments
// (migration 0006). An append locks its thread's row, so appends to one
// thread, from any number of processes, queue there and each reads the
// seq the previous one left.

var _ gatehouse.ThreadStore = (*DB)(nil)

const (
	threadColumns     = `id, tenant, owner, title, messages, last_seq, created_at, updated_at`
	messageColumns    = `id, thread_id, seq, role, author, content, tool_calls, tool_call_id, tool_name, status, reason, action_id, attachments, created_at`
	attachmentColumns = `id, thread_id, message_id, name, mime, size, sha256, data, created_at`
)

// CreateThread stores t with no messages; its UpdatedAt defaults to its
// CreatedAt.
func (db *DB) CreateThread(ctx context.Context, t gatehouse.Thread) error {
	if err := threadrows.CheckCreate(t); err != nil {
		return err
	}
	t.Messages, t.LastSeq, t.UpdatedAt = 0, 0, threadrows.UpdatedAt(t)
	return db.writeTx(ctx, "create thread", nil, func(tx pgx.Tx, _ metaValues) error {
		tag, err := tx.Exec(ctx, `INSERT INTO chat_threads (`+threadColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (id) DO NOTHING`, threadValues(&t)...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("thread %q: %w", t.ID, gatehouse.ErrConflict)
		}
		return nil
	})
}

// threadValues are the columns of t, in threadColumns' order.
func threadValues(t *gatehouse.Thread) []any {
	return []any{t.ID, t.Tenant, t.Owner, t.Title, t.Messages, t.LastSeq, micros(t.CreatedAt), micros(t.UpdatedAt)}
}

// GetThread returns the thread with id.
func (db *DB) GetThread(ctx context.Context, id string) (gatehouse.Thread, error) {
	t, err := scanThread(db.pool.QueryRow(ctx, `SELECT `+threadColumns+` FROM chat_threads WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return gatehouse.Thread{}, gatehouse.NotFoundf("thread %q", id)
	}
	if err != nil {
		return gatehouse.Thread{}, db.wrap(ctx, "get thread", err)
	}
	return t, nil
}

// ListThreads returns the threads f selects, most recently updated first
// and, among those updated at once, by id descending.
func (db *DB) ListThreads(ctx context.Context, f gatehouse.ThreadFilter) ([]gatehouse.Thread, error) {
	limit, err := threadrows.ListLimit(f)
	if err != nil {
		return nil, err
	}
	query := `SELECT ` + threadColumns + ` FROM chat_threads WHERE tenant = $1`
	args := []any{f.Tenant}
	if f.Owner != "" {
		query += ` AND owner = $2`
		args = append(args, f.Owner)
	}
	args = append(args, limit)
	rows, err := db.pool.Query(ctx, query+fmt.Sprintf(` ORDER BY updated_at DESC, id DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, db.wrap(ctx, "list threads", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gatehouse.Thread, error) { return scanThread(r) })
	if err != nil {
		return nil, db.wrap(ctx, "list threads", err)
	}
	return out, nil
}

// RenameThread sets the thread's title and UpdatedAt.
func (db *DB) RenameThread(ctx context.Context, id, title string, at time.Time) error {
	if err := threadrows.CheckRename(id, title, at); err != nil {
		return err
	}
	return db.writeTx(ctx, "rename thread", nil, func(tx pgx.Tx, _ metaValues) error {
		tag, err := tx.Exec(ctx, `UPDATE chat_threads SET title = $1, updated_at = $2 WHERE id = $3`, title, micros(at), id)
		if err == nil && tag.RowsAffected() == 0 {
			return gatehouse.NotFoundf("thread %q", id)
		}
		return err
	})
}

// DeleteThread deletes the thread; its messages and attachments go with
// it (ON DELETE CASCADE).
func (db *DB) DeleteThread(ctx context.Context, id string) error {
	return db.writeTx(ctx, "delete thread", nil, func(tx pgx.Tx, _ metaValues) error {
		tag, err := tx.Exec(ctx, `DELETE FROM chat_threads WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return gatehouse.NotFoundf("thread %q", id)
		}
		return err
	})
}

// AppendMessages appends msgs to their thread in one transaction that
// locks the thread's row first; see gatehouse.ThreadStore.
func (db *DB) AppendMessages(ctx context.Context, msgs []gatehouse.Message) error {
	threadID, err := threadrows.CheckAppend(msgs)
	if err != nil || threadID == "" {
		return err
	}
	var last int64
	err = db.writeTx(ctx, "append messages", nil, func(tx pgx.Tx, _ metaValues) error {
		err := tx.QueryRow(ctx, `SELECT last_seq FROM chat_threads WHERE id = $1 FOR UPDATE`, threadID).Scan(&last)
		if errors.Is(err, pgx.ErrNoRows) {
			return gatehouse.NotFoundf("thread %q", threadID)
		}
		if err != nil {
			return err
		}
		// One round trip: each statement's refusal says what it was.
		var (
			batch    pgx.Batch
			refusals []error
		)
		for i := range msgs {
			m := msgs[i]
			m.Seq = last + int64(i) + 1
			values, err := messageValues(&m)
			if err != nil {
				return err
			}
			batch.Queue(`INSERT INTO chat_messages (`+messageColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING`, values...)
			refusals = append(refusals, gatehouse.Invalidf("message %q: the id is taken", m.ID))
			for _, a := range m.Attachments {
				batch.Queue(`UPDATE chat_attachments SET message_id = $1 WHERE id = $2 AND thread_id = $3 AND message_id = ''`,
					m.ID, a, threadID)
				refusals = append(refusals, gatehouse.Invalidf("message %s: attachment %q is not an unlinked attachment of thread %s",
					m.ID, a, threadID))
			}
		}
		batch.Queue(`UPDATE chat_threads SET messages = messages + $1, last_seq = $2, updated_at = $3 WHERE id = $4`,
			len(msgs), last+int64(len(msgs)), micros(msgs[len(msgs)-1].CreatedAt), threadID)
		results := tx.SendBatch(ctx, &batch)
		for _, refusal := range refusals {
			tag, err := results.Exec()
			if err == nil && tag.RowsAffected() == 0 {
				err = refusal
			}
			if err != nil {
				// The batch's own error on closing adds nothing: the transaction rolls back.
				_ = results.Close()
				return err
			}
		}
		if _, err := results.Exec(); err != nil {
			_ = results.Close()
			return err
		}
		return results.Close()
	})
	if err != nil {
		return err
	}
	for i := range msgs {
		msgs[i].Seq = last + int64(i) + 1
	}
	return nil
}

// messageValues are the columns of m, in messageColumns' order.
func messageValues(m *gatehouse.Message) ([]any, error) {
	calls, err := threadrows.EncodeToolCalls(m.ToolCalls)
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", m.ID, err)
	}
	attachments, err := threadrows.EncodeIDs(m.Attachments)
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", m.ID, err)
	}
	return []any{m.ID, m.ThreadID, m.Seq, string(m.Role), m.Author, m.Content, calls, m.ToolCallID, m.ToolName,
		string(m.Status), string(m.Reason), m.ActionID, attachments, micros(m.CreatedAt)}, nil
}

// Messages returns the thread's messages after seq after, at most limit
// (0: all), from one read transaction.
func (db *DB) Messages(ctx context.Context, threadID string, after int64, limit int) ([]gatehouse.Message, error) {
	if limit < 0 {
		return nil, gatehouse.Invalidf("messages of thread %s: negative limit %d", threadID, limit)
	}
	var out []gatehouse.Message
	err := db.readTx(ctx, "messages", func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM chat_threads WHERE id = $1)`, threadID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return gatehouse.NotFoundf("thread %q", threadID)
		}
		// LIMIT NULL is no limit.
		var lim *int
		if limit > 0 {
			lim = &limit
		}
		rows, err := tx.Query(ctx, `SELECT `+messageColumns+` FROM chat_messages
			WHERE thread_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, threadID, after, lim)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (gatehouse.Message, error) { return scanMessage(r) })
		return err
	})
	return out, err
}

// PutAttachment stores a, unlinked, in its thread.
func (db *DB) PutAttachment(ctx context.Context, a gatehouse.Attachment) error {
	if err := threadrows.CheckAttachment(a); err != nil {
		return err
	}
	return db.writeTx(ctx, "put attachment", nil, func(tx pgx.Tx, _ metaValues) error {
		// Locked against a concurrent delete until the insert commits.
		err := tx.QueryRow(ctx, `SELECT id FROM chat_threads WHERE id = $1 FOR KEY SHARE`, a.ThreadID).Scan(new(string))
		if errors.Is(err, pgx.ErrNoRows) {
			return gatehouse.NotFoundf("thread %q", a.ThreadID)
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO chat_attachments (`+attachmentColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (id) DO NOTHING`, attachmentValues(&a)...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("attachment %q: %w", a.ID, gatehouse.ErrConflict)
		}
		return nil
	})
}

// attachmentValues are the columns of a, in attachmentColumns' order.
func attachmentValues(a *gatehouse.Attachment) []any {
	data := a.Data
	if data == nil {
		// NOT NULL: an empty document is an empty bytea.
		data = []byte{}
	}
	return []any{a.ID, a.ThreadID, a.MessageID, a.Name, a.MIME, a.Size, a.SHA256, data, micros(a.CreatedAt)}
}

// GetAttachment returns the attachment with id, with its data.
func (db *DB) GetAttachment(ctx context.Context, id string) (gatehouse.Attachment, error) {
	a, err := scanAttachment(db.pool.QueryRow(ctx, `SELECT `+attachmentColumns+` FROM chat_attachments WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return gatehouse.Attachment{}, gatehouse.NotFoundf("attachment %q", id)
	}
	if err != nil {
		return gatehouse.Attachment{}, db.wrap(ctx, "get attachment", err)
	}
	return a, nil
}

// fromMicros is the UTC time us microseconds after the epoch; the zero
// time for 0.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func scanThread(row pgx.Row) (gatehouse.Thread, error) {
	var (
		t                gatehouse.Thread
		created, updated int64
	)
	if err := row.Scan(&t.ID, &t.Tenant, &t.Owner, &t.Title, &t.Messages, &t.LastSeq, &created, &updated); err != nil {
		return gatehouse.Thread{}, err
	}
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	return t, nil
}

func scanMessage(row pgx.Row) (gatehouse.Message, error) {
	var (
		m                    gatehouse.Message
		role, status, reason string
		calls, attachments   *string
		created              int64
	)
	if err := row.Scan(&m.ID, &m.ThreadID, &m.Seq, &role, &m.Author, &m.Content, &calls, &m.ToolCallID, &m.ToolName,
		&status, &reason, &m.ActionID, &attachments, &created); err != nil {
		return gatehouse.Message{}, err
	}
	var err error
	if m.ToolCalls, err = threadrows.DecodeToolCalls(calls); err != nil {
		return gatehouse.Message{}, fmt.Errorf("message %s: %w", m.ID, err)
	}
	if m.Attachments, err = threadrows.DecodeIDs(attachments); err != nil {
		return gatehouse.Message{}, fmt.Errorf("message %s: %w", m.ID, err)
	}
	m.Role, m.Status, m.Reason = gatehouse.MessageRole(role), gatehouse.ToolCallStatus(status), gatehouse.Reason(reason)
	m.CreatedAt = fromMicros(created)
	return m, nil
}

func scanAttachment(row pgx.Row) (gatehouse.Attachment, error) {
	var (
		a       gatehouse.Attachment
		created int64
	)
	if err := row.Scan(&a.ID, &a.ThreadID, &a.MessageID, &a.Name, &a.MIME, &a.Size, &a.SHA256, &a.Data, &created); err != nil {
		return gatehouse.Attachment{}, err
	}
	if len(a.Data) == 0 {
		// An empty document reads back as no data, whatever the driver gives.
		a.Data = nil
	}
	a.CreatedAt = fromMicros(created)
	return a, nil
}
