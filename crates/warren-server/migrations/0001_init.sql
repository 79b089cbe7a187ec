-- Tenants, their API keys and sandboxes. Times are unix milliseconds (UTC);
-- maps are JSON objects of strings.

CREATE TABLE tenants (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL UNIQUE,
    -- Quota on creating + running sandboxes; NULL means no limit.
    max_sandboxes  INTEGER,
    created_at     INTEGER NOT NULL
);

CREATE TABLE api_keys (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    tenant_id   TEXT    NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- SHA-256 of the key; the key itself is never stored.
    hash        BLOB    NOT NULL UNIQUE,
    -- The first characters of the key, to tell keys apart in lists.
    prefix      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

CREATE TABLE sandboxes (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    -- NULL for sandboxes of the admin key.
    tenant_id        TEXT    REFERENCES tenants(id),
    -- creating | running | stopped | hibernated | error | destroying
    state            TEXT    NOT NULL,
    template         TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    last_active_at   INTEGER NOT NULL,
    -- Idle timeout; 0 disables it.
    timeout_secs     INTEGER NOT NULL,
    ttl_secs         INTEGER,
    -- Destruction deadline (created_at + ttl_secs + extensions); NULL without ttl.
    expires_at       INTEGER,
    envs             TEXT    NOT NULL,
    metadata         TEXT    NOT NULL,
    labels           TEXT    NOT NULL,
    workdir          TEXT    NOT NULL,
    cpus             REAL    NOT NULL,
    memory_mb        INTEGER NOT NULL,
    pids             INTEGER NOT NULL,
    egress           TEXT    NOT NULL,
    auto_checkpoint  INTEGER NOT NULL,
    -- Host pid of the sandbox's init while running.
    pid              INTEGER
);
CREATE INDEX sandboxes_tenant_state ON sandboxes(tenant_id, state);
CREATE INDEX sandboxes_state ON sandboxes(state);
