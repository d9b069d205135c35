-- Who recorded a deploy (the API token's name); audited with it.
ALTER TABLE deploys ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
