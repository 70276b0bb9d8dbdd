-- Policy objects, store metadata and the hash-chained audit log.
-- Raw JSON is stored as TEXT so it reads back byte for byte as written.

CREATE TABLE policy_objects (
	kind TEXT NOT NULL,
	id   TEXT NOT NULL,
	pos  INTEGER NOT NULL DEFAULT 0,
	body TEXT NOT NULL,
	PRIMARY KEY (kind, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value ANY NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES
	('policy_version', 0),
	('audit_head_seq', 0),
	('audit_head_hash', '');

-- time is microseconds since the Unix epoch, UTC.
CREATE TABLE audit_events (
	seq       INTEGER PRIMARY KEY,
	time      INTEGER NOT NULL,
	actor     TEXT NOT NULL,
	action    TEXT NOT NULL,
	target    TEXT NOT NULL,
	before    TEXT,
	after     TEXT,
	detail    TEXT,
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL
) STRICT;

CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_time ON audit_events (time, seq);
