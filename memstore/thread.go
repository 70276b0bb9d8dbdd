package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/threadrows"
)

// CreateThread stores t with no messages; its UpdatedAt defaults to its
// CreatedAt.
func (s *Store) CreateThread(ctx context.Context, t gatehouse.Thread) error {
	if err := threadrows.CheckCreate(t); err != nil {
		return err
	}
	t.Messages, t.LastSeq, t.UpdatedAt = 0, 0, threadrows.UpdatedAt(t)
	return s.write(ctx, "create thread", func(st *state) error {
		return st.insertThread(t)
	})
}

// insertThread stores t as it is; ErrConflict if its id is taken.
func (st *state) insertThread(t gatehouse.Thread) error {
	if _, ok := st.threads[t.ID]; ok {
		return fmt.Errorf("memstore: thread %q: %w", t.ID, gatehouse.ErrConflict)
	}
	t.CreatedAt, t.UpdatedAt = stamp(t.CreatedAt), stamp(t.UpdatedAt)
	st.threads[t.ID] = &thread{Thread: t}
	return nil
}

// GetThread returns the thread with id.
func (s *Store) GetThread(ctx context.Context, id string) (gatehouse.Thread, error) {
	var t gatehouse.Thread
	err := s.read(ctx, "get thread", func(st *state) error {
		th, ok := st.threads[id]
		if !ok {
			return gatehouse.NotFoundf("thread %q", id)
		}
		t = th.Thread
		return nil
	})
	return t, err
}

// ListThreads returns the threads f selects, most recently updated first
// and, among those updated at once, by id descending.
func (s *Store) ListThreads(ctx context.Context, f gatehouse.ThreadFilter) ([]gatehouse.Thread, error) {
	limit, err := threadrows.ListLimit(f)
	if err != nil {
		return nil, err
	}
	var out []gatehouse.Thread
	err = s.read(ctx, "list threads", func(st *state) error {
		for _, th := range st.threads {
			if th.Tenant == f.Tenant && (f.Owner == "" || th.Owner == f.Owner) {
				out = append(out, th.Thread)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b gatehouse.Thread) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// RenameThread sets the thread's title and UpdatedAt.
func (s *Store) RenameThread(ctx context.Context, id, title string, at time.Time) error {
	if err := threadrows.CheckRename(id, title, at); err != nil {
		return err
	}
	return s.write(ctx, "rename thread", func(st *state) error {
		th, ok := st.threads[id]
		if !ok {
			return gatehouse.NotFoundf("thread %q", id)
		}
		th.Title, th.UpdatedAt = title, stamp(at)
		return nil
	})
}

// DeleteThread deletes the thread with its messages and attachments.
func (s *Store) DeleteThread(ctx context.Context, id string) error {
	return s.write(ctx, "delete thread", func(st *state) error {
		th, ok := st.threads[id]
		if !ok {
			return gatehouse.NotFoundf("thread %q", id)
		}
		for _, m := range th.messages {
			delete(st.messageIDs, m.ID)
		}
		for aid, a := range st.attachments {
			if a.ThreadID == id {
				delete(st.attachments, aid)
			}
		}
		delete(st.threads, id)
		return nil
	})
}

// AppendMessages appends msgs to their thread in one transaction; see
// gatehouse.ThreadStore.
func (s *Store) AppendMessages(ctx context.Context, msgs []gatehouse.Message) error {
	threadID, err := threadrows.CheckAppend(msgs)
	if err != nil || threadID == "" {
		return err
	}
	var last int64
	err = s.write(ctx, "append messages", func(st *state) error {
		th, ok := st.threads[threadID]
		if !ok {
			return gatehouse.NotFoundf("thread %q", threadID)
		}
		last = th.LastSeq
		for _, m := range msgs {
			if st.messageIDs[m.ID] {
				return gatehouse.Invalidf("message %q: the id is taken", m.ID)
			}
			for _, id := range m.Attachments {
				if a, ok := st.attachments[id]; !ok || a.ThreadID != threadID || a.MessageID != "" {
					return gatehouse.Invalidf("message %s: attachment %q is not an unlinked attachment of thread %s", m.ID, id, threadID)
				}
			}
		}
		for i, m := range msgs {
			m.Seq = last + int64(i) + 1
			th.messages = append(th.messages, storedMessage(m))
			st.messageIDs[m.ID] = true
			for _, id := range m.Attachments {
				a := st.attachments[id]
				a.MessageID = m.ID
				st.attachments[id] = a
			}
		}
		th.Messages += int64(len(msgs))
		th.LastSeq = last + int64(len(msgs))
		th.UpdatedAt = stamp(msgs[len(msgs)-1].CreatedAt)
		return nil
	})
	if err != nil {
		return err
	}
	for i := range msgs {
		msgs[i].Seq = last + int64(i) + 1
	}
	return nil
}

// storedMessage is a copy of m as a database keeps it.
func storedMessage(m gatehouse.Message) gatehouse.Message {
	m.ToolCalls = threadrows.ToToolCalls(threadrows.FromToolCalls(m.ToolCalls))
	if len(m.Attachments) == 0 {
		m.Attachments = nil
	} else {
		m.Attachments = slices.Clone(m.Attachments)
	}
	m.CreatedAt = stamp(m.CreatedAt)
	return m
}

// Messages returns the thread's messages after seq after, at most limit
// (0: all).
func (s *Store) Messages(ctx context.Context, threadID string, after int64, limit int) ([]gatehouse.Message, error) {
	if limit < 0 {
		return nil, gatehouse.Invalidf("messages of thread %s: negative limit %d", threadID, limit)
	}
	var out []gatehouse.Message
	err := s.read(ctx, "messages", func(st *state) error {
		th, ok := st.threads[threadID]
		if !ok {
			return gatehouse.NotFoundf("thread %q", threadID)
		}
		from := sort.Search(len(th.messages), func(i int) bool { return th.messages[i].Seq > after })
		for _, m := range th.messages[from:] {
			if limit > 0 && len(out) == limit {
				break
			}
			out = append(out, storedMessage(m))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutAttachment stores a, unlinked, in its thread.
func (s *Store) PutAttachment(ctx context.Context, a gatehouse.Attachment) error {
	if err := threadrows.CheckAttachment(a); err != nil {
		return err
	}
	return s.write(ctx, "put attachment", func(st *state) error {
		if _, ok := st.threads[a.ThreadID]; !ok {
			return gatehouse.NotFoundf("thread %q", a.ThreadID)
		}
		return st.insertAttachment(a)
	})
}

// insertAttachment stores a copy of a; ErrConflict if its id is taken.
func (st *state) insertAttachment(a gatehouse.Attachment) error {
	if _, ok := st.attachments[a.ID]; ok {
		return fmt.Errorf("memstore: attachment %q: %w", a.ID, gatehouse.ErrConflict)
	}
	st.attachments[a.ID] = storedAttachment(a)
	return nil
}

// storedAttachment is a copy of a as a database keeps it.
func storedAttachment(a gatehouse.Attachment) gatehouse.Attachment {
	a.Data = data(a.Data)
	a.CreatedAt = stamp(a.CreatedAt)
	return a
}

// GetAttachment returns the attachment with id, with its data.
func (s *Store) GetAttachment(ctx context.Context, id string) (gatehouse.Attachment, error) {
	var a gatehouse.Attachment
	err := s.read(ctx, "get attachment", func(st *state) error {
		stored, ok := st.attachments[id]
		if !ok {
			return gatehouse.NotFoundf("attachment %q", id)
		}
		a = storedAttachment(stored)
		return nil
	})
	return a, err
}
