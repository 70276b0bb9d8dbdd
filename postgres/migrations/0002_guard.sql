-- Agent action records (seed 004's action_audit): every allowed action, the
-- capacity it holds in its limits' windows and its confirmation lifecycle.
-- The schema of the SQLite store; times that have not happened are NULL.

CREATE TABLE action_records (
	seq                   bigint PRIMARY KEY,
	id                    text NOT NULL UNIQUE,
	tenant                text NOT NULL,
	action                text NOT NULL,
	tool                  text NOT NULL,
	subject               text NOT NULL,
	on_behalf_of          text NOT NULL,
	-- NULL when the caller gave no key; keys are unique per subject.
	idempotency_key       text,
	fingerprint           text NOT NULL,
	args                  text,
	-- amount is in minor units of currency; currency is '' without amount.
	amount                bigint NOT NULL,
	currency              text NOT NULL,
	percentage            bigint NOT NULL,
	requires_confirmation boolean NOT NULL,
	reason                text NOT NULL,
	policy_version        bigint NOT NULL,
	status                text NOT NULL,
	created_at            timestamptz NOT NULL,
	expires_at            timestamptz,
	confirmed_at          timestamptz,
	confirmed_by          text NOT NULL,
	executed_at           timestamptz,
	error_message         text NOT NULL,
	updated_at            timestamptz NOT NULL,
	updated_by            text NOT NULL,
	UNIQUE (subject, idempotency_key)
);

-- The window count of a reservation reads this range.
CREATE INDEX action_records_window ON action_records (tenant, action, created_at);
CREATE INDEX action_records_created ON action_records (created_at, seq);
