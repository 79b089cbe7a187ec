-- The most a sandbox's disk may take beyond its template (MiB), enforced by
-- the btrfs driver with quota groups; NULL means no limit.
ALTER TABLE sandboxes ADD COLUMN disk_mb INTEGER;
