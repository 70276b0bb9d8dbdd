-- A batch of reservations reads its window usage from indexes alone: the
-- rows of one tenant and action within the window, with what decides
-- whether each holds capacity and its amount; and the pending rows that
-- expire within a short span.
DROP INDEX action_records_window;
CREATE INDEX action_records_window ON action_records (tenant, action, created_at, status, expires_at, amount);
CREATE INDEX action_records_expiry ON action_records (tenant, action, status, expires_at);
