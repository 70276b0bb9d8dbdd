-- API keys: service credentials, stored as the SHA-256 of their secret.
-- Times are microseconds since the Unix epoch, UTC; 0 means unset.

CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	subject    TEXT NOT NULL,
	scopes     TEXT NOT NULL,
	hash       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL,
	expires_at BIGINT NOT NULL,
	revoked_at BIGINT NOT NULL
);
