-- Index only the rows these lookups can find: pending actions (expiry) and unused
-- approvals (grants). An auto-approved call, the common insert, then touches neither.
DROP INDEX actions_expiry;
CREATE INDEX actions_pending_expiry ON actions (expires_at) WHERE status = 'pending_approval';
DROP INDEX actions_grant;
CREATE INDEX actions_grant_available ON actions (org_id, agent_id, operation, fingerprint)
    WHERE grant_state = 'available';

-- The head trigger also moves the sequence number, so the single writer, which knows
-- both from its previous append, can append with one statement.
DROP TRIGGER audit_events_head;
CREATE TRIGGER audit_events_head AFTER INSERT ON audit_events
BEGIN
    UPDATE orgs SET audit_head = NEW.hash, audit_seq = NEW.seq WHERE id = NEW.org_id;
END;
