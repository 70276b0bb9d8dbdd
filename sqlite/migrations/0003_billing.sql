-- Billing (seed 001): the payment provider's customers Gatehouse tracks and
-- the provider events it processed, each exactly once. Times are
-- microseconds since the Unix epoch, UTC; grace_until is 0 when not past due.

CREATE TABLE billing_customers (
	id           TEXT PRIMARY KEY,
	subject      TEXT NOT NULL,
	plan         TEXT NOT NULL,
	status       TEXT NOT NULL,
	grace_until  INTEGER NOT NULL,
	last_event   TEXT NOT NULL,
	last_created INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	version      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX billing_customers_subject ON billing_customers (subject, id);
CREATE INDEX billing_customers_grace ON billing_customers (status, grace_until);

-- The primary key is what makes a redelivered event a no-op.
CREATE TABLE billing_events (
	id           TEXT PRIMARY KEY,
	type         TEXT NOT NULL,
	customer     TEXT NOT NULL,
	created      INTEGER NOT NULL,
	processed_at INTEGER NOT NULL,
	outcome      TEXT NOT NULL
) STRICT, WITHOUT ROWID;
