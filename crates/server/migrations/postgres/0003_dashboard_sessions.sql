-- Dashboard sign-ins: the cookie holds a random token, stored here only as its SHA-256
-- hash, with the key it was made from (checked on every request, so revoking the key
-- ends the session), the synchronizer CSRF token of its forms, and when it ends.
CREATE TABLE dashboard_sessions (
    token_hash TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL REFERENCES api_keys(id),
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    role       TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);
