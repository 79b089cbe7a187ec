-- What the E2B-compatible routes add to a sandbox they created: what its
-- deadline (`sandboxes.expires_at`) does when it passes (E2B's
-- `autoPause`: hibernate instead of destroy), how long a `connect` without a
-- timeout keeps it, and whether its ports are public (E2B's default) or
-- need the traffic access token. Sandboxes without a row (Warren's own)
-- are destroyed at their deadline and have no public ports.
CREATE TABLE e2b_sandboxes (
    sandbox_id     TEXT    PRIMARY KEY REFERENCES sandboxes(id) ON DELETE CASCADE,
    auto_pause     INTEGER NOT NULL DEFAULT 0,
    timeout_secs   INTEGER NOT NULL DEFAULT 300,
    public_traffic INTEGER NOT NULL DEFAULT 1,
    traffic_token  TEXT
);
