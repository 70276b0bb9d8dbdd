-- Policy objects, store metadata and the hash-chained audit log: the schema
-- of the SQLite store. Raw JSON is text, not jsonb, so it reads back byte for
-- byte as written.

CREATE TABLE policy_objects (
	kind text NOT NULL,
	id   text NOT NULL,
	pos  bigint NOT NULL DEFAULT 0,
	body text NOT NULL,
	PRIMARY KEY (kind, id)
);

-- Numbers are decimal text. Every write locks the rows it moves with
-- SELECT ... FOR UPDATE, which is what serializes writers.
CREATE TABLE meta (
	key   text PRIMARY KEY,
	value text NOT NULL
);

INSERT INTO meta (key, value) VALUES
	('policy_version', '0'),
	('audit_head_seq', '0'),
	('audit_head_hash', '');

-- timestamptz keeps microseconds, as events do.
CREATE TABLE audit_events (
	seq       bigint PRIMARY KEY,
	time      timestamptz NOT NULL,
	actor     text NOT NULL,
	action    text NOT NULL,
	target    text NOT NULL,
	before    text,
	after     text,
	detail    text,
	prev_hash text NOT NULL,
	hash      text NOT NULL
);

CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_time ON audit_events (time, seq);
