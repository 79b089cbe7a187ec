-- Time travel: checkpoints (read-only snapshots of sandbox disks), the
-- patches run in sandboxes made from them, and the sandbox options that go
-- with them. Times are unix milliseconds (UTC).

CREATE TABLE checkpoints (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    -- The sandbox it was taken of. No foreign key: a checkpoint outlives
    -- its sandbox (and an imported one names a sandbox of another server).
    sandbox_id  TEXT    NOT NULL,
    -- NULL for checkpoints of the admin key.
    tenant_id   TEXT,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    -- The command and exit code an automatic checkpoint follows.
    command     TEXT,
    exit_code   INTEGER,
    -- Taken by auto_checkpoint: retention applies, and it goes with its sandbox.
    auto        INTEGER NOT NULL,
    imported    INTEGER NOT NULL,
    -- What a sandbox made from it starts with besides the disk.
    template    TEXT    NOT NULL,
    workdir     TEXT    NOT NULL,
    envs        TEXT    NOT NULL
);
CREATE INDEX checkpoints_sandbox ON checkpoints(sandbox_id, seq);
CREATE INDEX checkpoints_tenant ON checkpoints(tenant_id, seq);

CREATE TABLE checkpoint_patches (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    checkpoint_id  TEXT    NOT NULL REFERENCES checkpoints(id) ON DELETE CASCADE,
    name           TEXT,
    script         TEXT    NOT NULL,
    timeout_ms     INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX checkpoint_patches_checkpoint ON checkpoint_patches(checkpoint_id, seq);

-- A call to the agent of a hibernated sandbox wakes it first.
ALTER TABLE sandboxes ADD COLUMN auto_wake INTEGER NOT NULL DEFAULT 0;
-- How many automatic checkpoints are kept (the oldest go first).
ALTER TABLE sandboxes ADD COLUMN auto_checkpoint_keep INTEGER NOT NULL DEFAULT 100;
-- The checkpoint the sandbox's disk was made from, if any.
ALTER TABLE sandboxes ADD COLUMN from_checkpoint TEXT;
