-- The commits a deploy ships, as a JSON array of {"sha","time"} (time in
-- RFC 3339, UTC); '[]' when none were given. Lead time for changes reads
-- the earliest commit time.
ALTER TABLE deploys ADD COLUMN commits TEXT NOT NULL DEFAULT '[]';
