-- Fewer b-trees per submit. Every index is one more b-tree insert in the single
-- writer's transaction, and a submit was six (actions: the rowid table, its `id`
-- index, org+created, org+status; audit_events: the rowid table, its key index).
--
-- 1. Status lookups by organisation only ever ask for pending actions (the dashboard's
--    queue and its count); listing by any other status filters the org+created scan.
--    Index only the pending rows, so an auto-approved or denied call skips it.
-- 2. Both tables are keyed by what every lookup uses (`actions.id`; an organisation's
--    `seq` for the audit chain) and stored in that key's b-tree (WITHOUT ROWID): one
--    b-tree instead of a rowid table beside a key index. Action ids are ULIDs and
--    sequence numbers grow, so both are appended at the right edge of their tree.

CREATE TABLE actions_keyed (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES orgs(id),
    key_id            TEXT NOT NULL,
    agent_id          TEXT NOT NULL,
    agent_name        TEXT NOT NULL,
    action_type       TEXT NOT NULL,
    operation         TEXT NOT NULL,
    service           TEXT,
    region            TEXT NOT NULL,
    resource          TEXT,
    tool_name         TEXT,
    description       TEXT,
    parameters        TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    client_risk_score INTEGER,
    risk_score        INTEGER NOT NULL,
    risk_level        TEXT NOT NULL,
    status            TEXT NOT NULL,
    reason            TEXT NOT NULL,
    reasons           TEXT NOT NULL,
    policy_ids        TEXT NOT NULL,
    alert_id          TEXT,
    created_at        TEXT NOT NULL,
    expires_at        TEXT,
    decided_at        TEXT,
    decided_by        TEXT,
    decided_via       TEXT NOT NULL DEFAULT 'auto',
    comment           TEXT,
    grant_state       TEXT,
    granted_from      TEXT,
    result            TEXT
) WITHOUT ROWID;
INSERT INTO actions_keyed (id, org_id, key_id, agent_id, agent_name, action_type, operation,
    service, region, resource, tool_name, description, parameters, fingerprint,
    client_risk_score, risk_score, risk_level, status, reason, reasons, policy_ids, alert_id,
    created_at, expires_at, decided_at, decided_by, decided_via, comment, grant_state,
    granted_from, result)
SELECT id, org_id, key_id, agent_id, agent_name, action_type, operation,
    service, region, resource, tool_name, description, parameters, fingerprint,
    client_risk_score, risk_score, risk_level, status, reason, reasons, policy_ids, alert_id,
    created_at, expires_at, decided_at, decided_by, decided_via, comment, grant_state,
    granted_from, result
FROM actions;
DROP TABLE actions;
ALTER TABLE actions_keyed RENAME TO actions;
CREATE INDEX actions_org_created ON actions (org_id, created_at);
CREATE INDEX actions_org_pending ON actions (org_id, created_at)
    WHERE status = 'pending_approval';
CREATE INDEX actions_pending_expiry ON actions (expires_at) WHERE status = 'pending_approval';
CREATE INDEX actions_grant_available ON actions (org_id, agent_id, operation, fingerprint)
    WHERE grant_state = 'available';

CREATE TABLE audit_events_keyed (
    org_id    TEXT NOT NULL REFERENCES orgs(id),
    seq       INTEGER NOT NULL,
    action_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    agent_id  TEXT NOT NULL,
    decision  TEXT NOT NULL,
    ts        TEXT NOT NULL,
    body      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
) WITHOUT ROWID;
INSERT INTO audit_events_keyed (org_id, seq, action_id, kind, agent_id, decision, ts, body,
    prev_hash, hash)
SELECT org_id, seq, action_id, kind, agent_id, decision, ts, body, prev_hash, hash
FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_keyed RENAME TO audit_events;
CREATE UNIQUE INDEX audit_local_once ON audit_events (org_id, action_id) WHERE kind = 'local';
