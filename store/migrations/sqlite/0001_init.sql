-- Times are INTEGER microseconds since the Unix epoch, UTC.

CREATE TABLE deploys (
    id               TEXT PRIMARY KEY,
    service          TEXT NOT NULL,
    environment      TEXT NOT NULL,
    version          TEXT NOT NULL,
    previous_version TEXT NOT NULL DEFAULT '',
    commit_sha       TEXT NOT NULL DEFAULT '',
    pipeline_url     TEXT NOT NULL DEFAULT '',
    strategy         TEXT NOT NULL DEFAULT '',
    labels           TEXT NOT NULL DEFAULT '{}',
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    status           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    idempotency_key  TEXT UNIQUE,
    request_hash     TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX deploys_started ON deploys (started_at DESC, id DESC);
CREATE INDEX deploys_service_env_started ON deploys (service, environment, started_at DESC, id DESC);

CREATE TABLE decisions (
    evaluation_id TEXT PRIMARY KEY,
    service       TEXT NOT NULL,
    environment   TEXT NOT NULL,
    version       TEXT NOT NULL DEFAULT '',
    deploy_id     TEXT NOT NULL DEFAULT '',
    decision      TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    body          BLOB NOT NULL,
    evaluated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX decisions_evaluated ON decisions (evaluated_at DESC, evaluation_id DESC);
CREATE INDEX decisions_service_env_evaluated ON decisions (service, environment, evaluated_at DESC, evaluation_id DESC);
CREATE INDEX decisions_deploy ON decisions (deploy_id, evaluated_at DESC);

CREATE TABLE overrides (
    id          TEXT PRIMARY KEY,
    service     TEXT NOT NULL,
    environment TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    revoked_by  TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX overrides_service_env ON overrides (service, environment, expires_at);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_subject ON audit_log (subject, id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    key             TEXT NOT NULL UNIQUE,
    peer            TEXT NOT NULL,
    payload         BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX outbox_due ON outbox (peer, next_attempt_at, id) WHERE delivered_at IS NULL;
