-- Billing (seed 001): the payment provider's customers Gatehouse tracks and
-- the provider events it processed, each exactly once. The schema of the
-- SQLite store; grace_until is NULL when the customer is not past due.

CREATE TABLE billing_customers (
	id           text PRIMARY KEY,
	subject      text NOT NULL,
	plan         text NOT NULL,
	status       text NOT NULL,
	grace_until  timestamptz,
	last_event   text NOT NULL,
	last_created timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL,
	version      bigint NOT NULL
);

CREATE INDEX billing_customers_subject ON billing_customers (subject, id);
CREATE INDEX billing_customers_grace ON billing_customers (status, grace_until);

-- The primary key is what makes a redelivered event a no-op.
CREATE TABLE billing_events (
	id           text PRIMARY KEY,
	type         text NOT NULL,
	customer     text NOT NULL,
	created      timestamptz NOT NULL,
	processed_at timestamptz NOT NULL,
	outcome      text NOT NULL
);
