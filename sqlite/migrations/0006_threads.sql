-- Chat threads, their messages in seq order and the documents uploaded
-- into them. Times are microseconds since the Unix epoch, UTC. Deleting a
-- thread deletes its messages and attachments (ON DELETE CASCADE).

CREATE TABLE chat_threads (
	id         TEXT PRIMARY KEY,
	tenant     TEXT NOT NULL,
	owner      TEXT NOT NULL,
	title      TEXT NOT NULL,
	messages   INTEGER NOT NULL,
	last_seq   INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- ListThreads: one owner's threads, or a whole tenant's, newest-updated first.
CREATE INDEX chat_threads_owner ON chat_threads (tenant, owner, updated_at DESC, id DESC);
CREATE INDEX chat_threads_tenant ON chat_threads (tenant, updated_at DESC, id DESC);

-- tool_calls is a JSON array whose arguments are strings of the exact bytes
-- the model wrote; attachments a JSON array of attachment ids. Both are NULL
-- when the list is empty. The unique (thread_id, seq) reads a thread in order.
CREATE TABLE chat_messages (
	id           TEXT PRIMARY KEY,
	thread_id    TEXT NOT NULL REFERENCES chat_threads (id) ON DELETE CASCADE,
	seq          INTEGER NOT NULL,
	role         TEXT NOT NULL,
	author       TEXT NOT NULL,
	content      TEXT NOT NULL,
	tool_calls   TEXT,
	tool_call_id TEXT NOT NULL,
	tool_name    TEXT NOT NULL,
	status       TEXT NOT NULL,
	reason       TEXT NOT NULL,
	action_id    TEXT NOT NULL,
	attachments  TEXT,
	created_at   INTEGER NOT NULL,
	UNIQUE (thread_id, seq)
) STRICT;

-- message_id is '' until a message carries the attachment.
CREATE TABLE chat_attachments (
	id         TEXT PRIMARY KEY,
	thread_id  TEXT NOT NULL REFERENCES chat_threads (id) ON DELETE CASCADE,
	message_id TEXT NOT NULL,
	name       TEXT NOT NULL,
	mime       TEXT NOT NULL,
	size       INTEGER NOT NULL,
	sha256     TEXT NOT NULL,
	data       BLOB NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX chat_attachments_thread ON chat_attachments (thread_id);
