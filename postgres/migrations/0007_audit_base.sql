-- Where the audit chain begins after retention pruned old decisions: the
-- last pruned seq, the hash event it had, and the digest of the events kept
-- at or before it (audit.RetainedDigest). Zero and empty: never pruned.
INSERT INTO meta (key, value) VALUES
	('audit_base_seq', '0'),
	('audit_base_hash', ''),
	('audit_base_retained', '');
