-- Organisations: each owns its keys, agents, actions, policies and audit chain.
CREATE TABLE orgs (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    created_at          TEXT NOT NULL,
    policies            TEXT NOT NULL DEFAULT '',
    policies_version    INTEGER NOT NULL DEFAULT 0,
    policies_updated_at TEXT,
    auto_approve_low    INTEGER NOT NULL DEFAULT 1,
    auto_approve_medium INTEGER NOT NULL DEFAULT 0,
    audit_seq           INTEGER NOT NULL DEFAULT 0,
    audit_head          TEXT NOT NULL DEFAULT ''
);

-- API keys, stored only as SHA-256 hashes.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    role       TEXT NOT NULL,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE agents (
    org_id         TEXT NOT NULL REFERENCES orgs(id),
    agent_id       TEXT NOT NULL,
    name           TEXT NOT NULL,
    first_seen     TEXT NOT NULL,
    last_seen      TEXT NOT NULL,
    blocked        INTEGER NOT NULL DEFAULT 0,
    blocked_reason TEXT,
    blocked_at     TEXT,
    blocked_by     TEXT,
    approved_count INTEGER NOT NULL DEFAULT 0,
    denied_count   INTEGER NOT NULL DEFAULT 0,
    pending_count  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, agent_id)
);

CREATE TABLE actions (
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
);
CREATE INDEX actions_org_created ON actions (org_id, created_at);
CREATE INDEX actions_org_status ON actions (org_id, status);
CREATE INDEX actions_grant ON actions (org_id, agent_id, operation, fingerprint, grant_state);
CREATE INDEX actions_expiry ON actions (status, expires_at);

-- The audit log: one SHA-256 hash chain per organisation.
CREATE TABLE audit_events (
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
);
CREATE UNIQUE INDEX audit_local_once ON audit_events (org_id, action_id) WHERE kind = 'local';
