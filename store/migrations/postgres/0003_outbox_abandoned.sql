-- A notification given up on (final failure, too old): kept for inspection,
-- never claimed again, not counted as pending.
ALTER TABLE outbox ADD COLUMN abandoned_at timestamptz;
