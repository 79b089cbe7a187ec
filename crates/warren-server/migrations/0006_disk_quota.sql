-- A tenant's quota on disk: the sum of its sandboxes' disk_mb, stopped and
-- hibernated ones included (their disks stay). NULL means no limit.
ALTER TABLE tenants ADD COLUMN max_disk_mb INTEGER;
