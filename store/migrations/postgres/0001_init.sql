CREATE TABLE deploys (
    id               text PRIMARY KEY,
    service          text NOT NULL,
    environment      text NOT NULL,
    version          text NOT NULL,
    previous_version text NOT NULL DEFAULT '',
    commit_sha       text NOT NULL DEFAULT '',
    pipeline_url     text NOT NULL DEFAULT '',
    strategy         text NOT NULL DEFAULT '',
    labels           jsonb NOT NULL DEFAULT '{}',
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    status           text NOT NULL,
    created_at       timestamptz NOT NULL,
    idempotency_key  text UNIQUE,
    request_hash     text NOT NULL DEFAULT ''
);
CREATE INDEX deploys_started ON deploys (started_at DESC, id DESC);
CREATE INDEX deploys_service_env_started ON deploys (service, environment, started_at DESC, id DESC);

CREATE TABLE decisions (
    evaluation_id text PRIMARY KEY,
    service       text NOT NULL,
    environment   text NOT NULL,
    version       text NOT NULL DEFAULT '',
    deploy_id     text NOT NULL DEFAULT '',
    decision      text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    body          bytea NOT NULL,
    evaluated_at  timestamptz NOT NULL
);
CREATE INDEX decisions_evaluated ON decisions (evaluated_at DESC, evaluation_id DESC);
CREATE INDEX decisions_service_env_evaluated ON decisions (service, environment, evaluated_at DESC, evaluation_id DESC);
CREATE INDEX decisions_deploy ON decisions (deploy_id, evaluated_at DESC);

CREATE TABLE overrides (
    id          text PRIMARY KEY,
    service     text NOT NULL,
    environment text NOT NULL,
    reason      text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    revoked_by  text NOT NULL DEFAULT ''
);
CREATE INDEX overrides_service_env ON overrides (service, environment, expires_at);

CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    subject text NOT NULL,
    detail  text NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject, id);

CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key             text NOT NULL UNIQUE,
    peer            text NOT NULL,
    payload         bytea NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    last_error      text NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (peer, next_attempt_at, id) WHERE delivered_at IS NULL;
