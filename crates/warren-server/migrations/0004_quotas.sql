-- Per-tenant quotas beyond max_sandboxes: every sandbox the tenant has
-- (stopped ones included), and the memory and CPUs of those holding
-- compute. NULL means no limit.
ALTER TABLE tenants ADD COLUMN max_total_sandboxes INTEGER;
ALTER TABLE tenants ADD COLUMN max_memory_mb INTEGER;
ALTER TABLE tenants ADD COLUMN max_cpus REAL;
