-- Allow-lists of sandboxes' egress policies, and preview URLs.

-- JSON array of the entries admitted under egress 'deny' (CIDRs, names).
ALTER TABLE sandboxes ADD COLUMN network_allow TEXT NOT NULL DEFAULT '[]';

CREATE TABLE previews (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    -- Removed with its sandbox.
    sandbox_id  TEXT    NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
    port        INTEGER NOT NULL,
    -- public | token
    auth        TEXT    NOT NULL,
    -- The token of a 'token' preview (shown to the sandbox's owner again on
    -- list, like the URL it unlocks).
    token       TEXT,
    domain      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (sandbox_id, port)
);
