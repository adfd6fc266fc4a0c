-- Index only the rows these lookups can find: pending actions (expiry) and unused
-- approvals (grants). An auto-approved call, the common insert, then touches neither.
DROP INDEX actions_expiry;
CREATE INDEX actions_pending_expiry ON actions (expires_at) WHERE status = 'pending_approval';
DROP INDEX actions_grant;
CREATE INDEX actions_grant_available ON actions (org_id, agent_id, operation, fingerprint)
    WHERE grant_state = 'available';

-- The head trigger also moves the sequence number (as on SQLite, where the single
-- writer appends with one statement; here `append` still takes the row lock first).
CREATE OR REPLACE FUNCTION ascend_audit_head() RETURNS trigger AS $$
BEGIN
    UPDATE orgs SET audit_head = NEW.hash, audit_seq = NEW.seq WHERE id = NEW.org_id;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
