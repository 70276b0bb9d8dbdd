package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/threadrows"
)

// Chat threads live in chat_threads, chat_messages and chat_attachments
// (migration 0006). Writes serialize on the one write connection, so an
// append reads the thread's last seq and writes the next ones unraced.

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
	return db.writeTx(ctx, "create thread", func(tx *sql.Tx) error {
		return insertThread(ctx, tx, t)
	})
}

// insertThread inserts t as it is; ErrConflict if its id is taken.
func insertThread(ctx context.Context, tx *sql.Tx, t gatehouse.Thread) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO chat_threads (`+threadColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		t.ID, t.Tenant, t.Owner, t.Title, t.Messages, t.LastSeq, micros(t.CreatedAt), micros(t.UpdatedAt))
	if ok, err := changed(res, err); err != nil || !ok {
		return errors.Join(err, fmt.Errorf("thread %q: %w", t.ID, gatehouse.ErrConflict))
	}
	return nil
}

// GetThread returns the thread with id.
func (db *DB) GetThread(ctx context.Context, id string) (gatehouse.Thread, error) {
	t, err := scanThread(db.read.QueryRowContext(ctx, `SELECT `+threadColumns+` FROM chat_threads WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return gatehouse.Thread{}, gatehouse.NotFoundf("thread %q", id)
	}
	if err != nil {
		return gatehouse.Thread{}, db.wrap("get thread", ctxErr(ctx, err))
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
	query := `SELECT ` + threadColumns + ` FROM chat_threads WHERE tenant = ?`
	args := []any{f.Tenant}
	if f.Owner != "" {
		query += ` AND owner = ?`
		args = append(args, f.Owner)
	}
	rows, err := db.read.QueryContext(ctx, query+` ORDER BY updated_at DESC, id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, db.wrap("list threads", ctxErr(ctx, err))
	}
	out, err := collectRows(rows, scanThread)
	if err != nil {
		return nil, db.wrap("list threads", ctxErr(ctx, err))
	}
	return out, nil
}

// RenameThread sets the thread's title and UpdatedAt.
func (db *DB) RenameThread(ctx context.Context, id, title string, at time.Time) error {
	if err := threadrows.CheckRename(id, title, at); err != nil {
		return err
	}
	return db.writeTx(ctx, "rename thread", func(tx *sql.Tx) error {
		ok, err := changed(tx.ExecContext(ctx, `UPDATE chat_threads SET title = ?, updated_at = ? WHERE id = ?`, title, micros(at), id))
		if err == nil && !ok {
			return gatehouse.NotFoundf("thread %q", id)
		}
		return err
	})
}

// DeleteThread deletes the thread; its messages and attachments go with
// it (ON DELETE CASCADE).
func (db *DB) DeleteThread(ctx context.Context, id string) error {
	return db.writeTx(ctx, "delete thread", func(tx *sql.Tx) error {
		ok, err := changed(tx.ExecContext(ctx, `DELETE FROM chat_threads WHERE id = ?`, id))
		if err == nil && !ok {
			return gatehouse.NotFoundf("thread %q", id)
		}
		return err
	})
}

// changed reports whether a statement that succeeded changed a row.
func changed(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// AppendMessages appends msgs to their thread in one transaction; see
// gatehouse.ThreadStore.
func (db *DB) AppendMessages(ctx context.Context, msgs []gatehouse.Message) error {
	threadID, err := threadrows.CheckAppend(msgs)
	if err != nil || threadID == "" {
		return err
	}
	var last int64
	err = db.writeTx(ctx, "append messages", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT last_seq FROM chat_threads WHERE id = ?`, threadID).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			return gatehouse.NotFoundf("thread %q", threadID)
		}
		if err != nil {
			return err
		}
		insert, err := tx.PrepareContext(ctx, `INSERT INTO chat_messages (`+messageColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
		if err != nil {
			return err
		}
		defer insert.Close()
		link, err := tx.PrepareContext(ctx, `UPDATE chat_attachments SET message_id = ?
			WHERE id = ? AND thread_id = ? AND message_id = ''`)
		if err != nil {
			return err
		}
		defer link.Close()
		for i := range msgs {
			m := msgs[i]
			m.Seq = last + int64(i) + 1
			values, err := messageValues(&m)
			if err != nil {
				return err
			}
			ok, err := changed(insert.ExecContext(ctx, values...))
			if err != nil {
				return err
			}
			if !ok {
				return gatehouse.Invalidf("message %q: the id is taken", m.ID)
			}
			for _, a := range m.Attachments {
				ok, err := changed(link.ExecContext(ctx, m.ID, a, threadID))
				if err != nil {
					return err
				}
				if !ok {
					return gatehouse.Invalidf("message %s: attachment %q is not an unlinked attachment of thread %s", m.ID, a, threadID)
				}
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE chat_threads SET messages = messages + ?, last_seq = ?, updated_at = ? WHERE id = ?`,
			len(msgs), last+int64(len(msgs)), micros(msgs[len(msgs)-1].CreatedAt), threadID)
		return err
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
	err := db.readTx(ctx, "messages", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM chat_threads WHERE id = ?`, threadID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return gatehouse.NotFoundf("thread %q", threadID)
		}
		// LIMIT -1 is SQLite's "no limit".
		rows, err := tx.QueryContext(ctx, `SELECT `+messageColumns+` FROM chat_messages
			WHERE thread_id = ? AND seq > ? ORDER BY seq LIMIT ?`, threadID, after, sqlLimit(limit))
		if err != nil {
			return err
		}
		out, err = collectRows(rows, scanMessage)
		return err
	})
	return out, err
}

// sqlLimit is limit as SQLite's LIMIT takes it: -1 for 0, no limit.
func sqlLimit(limit int) int {
	if limit == 0 {
		return -1
	}
	return limit
}

// PutAttachment stores a, unlinked, in its thread.
func (db *DB) PutAttachment(ctx context.Context, a gatehouse.Attachment) error {
	if err := threadrows.CheckAttachment(a); err != nil {
		return err
	}
	return db.writeTx(ctx, "put attachment", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM chat_threads WHERE id = ?`, a.ThreadID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return gatehouse.NotFoundf("thread %q", a.ThreadID)
		}
		return insertAttachment(ctx, tx, a)
	})
}

// insertAttachment inserts a as it is; ErrConflict if its id is taken.
func insertAttachment(ctx context.Context, tx *sql.Tx, a gatehouse.Attachment) error {
	data := a.Data
	if data == nil {
		// NOT NULL: an empty document is an empty blob.
		data = []byte{}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO chat_attachments (`+attachmentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		a.ID, a.ThreadID, a.MessageID, a.Name, a.MIME, a.Size, a.SHA256, data, micros(a.CreatedAt))
	if ok, err := changed(res, err); err != nil || !ok {
		return errors.Join(err, fmt.Errorf("attachment %q: %w", a.ID, gatehouse.ErrConflict))
	}
	return nil
}

// GetAttachment returns the attachment with id, with its data.
func (db *DB) GetAttachment(ctx context.Context, id string) (gatehouse.Attachment, error) {
	a, err := scanAttachment(db.read.QueryRowContext(ctx, `SELECT `+attachmentColumns+` FROM chat_attachments WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return gatehouse.Attachment{}, gatehouse.NotFoundf("attachment %q", id)
	}
	if err != nil {
		return gatehouse.Attachment{}, db.wrap("get attachment", ctxErr(ctx, err))
	}
	return a, nil
}

// collectRows scans every row of rows and closes them.
func collectRows[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanThread(row scanner) (gatehouse.Thread, error) {
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

func scanMessage(row scanner) (gatehouse.Message, error) {
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

func scanAttachment(row scanner) (gatehouse.Attachment, error) {
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
