-- Issue 13. The statuses of the leader's latest scheduled evaluation,
-- saved after each run so that followers serve them (with their age)
-- instead of no figures; one row per evaluation name.
CREATE TABLE leader_figures (
    name        TEXT PRIMARY KEY,
    replica     TEXT NOT NULL,
    measured_at INTEGER NOT NULL,
    saved_at    INTEGER NOT NULL,
    statuses    BLOB NOT NULL
);
