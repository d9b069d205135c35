-- Issue 13. Messages with one order key (a peer's alert of one SLO and
-- severity) are delivered one at a time, in the order of their events;
-- enqueued_at is when a message was queued (its maximum age counts from
-- it, not from its event's time).
ALTER TABLE outbox ADD COLUMN order_key TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN enqueued_at INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET enqueued_at = created_at;
CREATE INDEX outbox_order ON outbox (peer, order_key, created_at, id) WHERE delivered_at IS NULL AND abandoned_at IS NULL AND order_key <> '';
