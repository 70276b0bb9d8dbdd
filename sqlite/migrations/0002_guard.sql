-- Agent action records (seed 004's action_audit): every allowed action, the
-- capacity it holds in its limits' windows and its confirmation lifecycle.
-- Times are microseconds since the Unix epoch, UTC; 0 means not yet.

CREATE TABLE action_records (
	seq                   INTEGER PRIMARY KEY,
	id                    TEXT NOT NULL UNIQUE,
	tenant                TEXT NOT NULL,
	action                TEXT NOT NULL,
	tool                  TEXT NOT NULL,
	subject               TEXT NOT NULL,
	on_behalf_of          TEXT NOT NULL,
	-- NULL when the caller gave no key; keys are unique per subject.
	idempotency_key       TEXT,
	fingerprint           TEXT NOT NULL,
	args                  TEXT,
	-- amount is in minor units of currency; currency is '' without amount.
	amount                INTEGER NOT NULL,
	currency              TEXT NOT NULL,
	percentage            INTEGER NOT NULL,
	requires_confirmation INTEGER NOT NULL,
	reason                TEXT NOT NULL,
	policy_version        INTEGER NOT NULL,
	status                TEXT NOT NULL,
	created_at            INTEGER NOT NULL,
	expires_at            INTEGER NOT NULL,
	confirmed_at          INTEGER NOT NULL,
	confirmed_by          TEXT NOT NULL,
	executed_at           INTEGER NOT NULL,
	error_message         TEXT NOT NULL,
	updated_at            INTEGER NOT NULL,
	updated_by            TEXT NOT NULL,
	UNIQUE (subject, idempotency_key)
) STRICT;

-- The window count of a reservation reads this range.
CREATE INDEX action_records_window ON action_records (tenant, action, created_at);
CREATE INDEX action_records_created ON action_records (created_at, seq);
