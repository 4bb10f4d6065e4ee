-- Recovering from what goes wrong while syncing.

-- A secret this terminal sends with every enrolment, so that the same
-- terminal may ask again for an answer that was lost on the way.
CREATE TABLE terminal_secret (
    only_one INTEGER PRIMARY KEY CHECK (only_one = 1),
    enrolment_key TEXT NOT NULL
);

-- The server history the cursor belongs to (see protocol.rs).
ALTER TABLE sync_account ADD COLUMN server_history TEXT;
-- 1 while pulling everything again after the server was restored: when that
-- pull completes, pulled ops the server no longer has are dropped.
ALTER TABLE sync_account ADD COLUMN repulling INTEGER NOT NULL DEFAULT 0;
-- The version of the server's grid map this terminal holds (0: none yet).
ALTER TABLE sync_account ADD COLUMN grid_map_version INTEGER NOT NULL DEFAULT 0;
