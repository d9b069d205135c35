-- Issue 13. The statuses of the leader's latest scheduled evaluation,
-- saved after each run so that followers serve them (with their age)
-- instead of no figures; one row per evaluation name.
CREATE TABLE leader_figures (
    name        text PRIMARY KEY,
    replica     text NOT NULL,
    measured_at timestamptz NOT NULL,
    saved_at    timestamptz NOT NULL,
    statuses    bytea NOT NULL
);
