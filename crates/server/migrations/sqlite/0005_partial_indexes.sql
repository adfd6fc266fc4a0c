-- Index only the rows these lookups can find: pending actions (expiry) and unused
-- approvals (grants). An auto-approved call, the common insert, then touches neither.
DROP INDEX actions_expiry;
CREATE INDEX actions_pending_expiry ON actions (expires_at) WHERE status = 'pending_approval';
DROP INDEX actions_grant;
CREATE INDEX actions_grant_available ON actions (org_id, agent_id, operation, fingerprint)
    WHERE grant_state = 'available';
