-- The reaper asks every second which sandboxes are past their deadline and
-- which have been idle past their timeout. Without these, each question
-- read every row of `sandboxes` (a scan, or the `state` index and a lookup
-- per running sandbox): thousands of cold pages a second with thousands of
-- sandboxes alive. With them, each reads only the rows that answer it, and
-- sandboxes without a deadline or a timeout are in neither index.
CREATE INDEX sandboxes_expires ON sandboxes(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX sandboxes_idle_deadline ON sandboxes(last_active_at + timeout_secs * 1000)
    WHERE state = 'running' AND timeout_secs > 0;
