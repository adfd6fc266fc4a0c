-- Webhooks: URLs an administrator registered for events of the organisation.
-- `events` is a JSON array of event names; `secret` signs every delivery (HMAC-SHA256).
-- A deleted webhook keeps its row (deleted_at) so that its log stays consistent.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    secret      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    deleted_at  TEXT
);
CREATE INDEX webhooks_org ON webhooks (org_id, deleted_at);

-- The outbox: one row per (webhook, event), inserted in the transaction that records the
-- decision. `state`: pending → delivered | failed (gave up) | cancelled (webhook deleted).
-- A dispatcher claims a due row by moving `lease_until` forward and counting the attempt.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks(id),
    org_id          TEXT NOT NULL REFERENCES orgs(id),
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT,
    lease_until     TEXT,
    delivered_at    TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, created_at);

-- The delivery log: one row per attempt.
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id),
    attempt     INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    status_code INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
