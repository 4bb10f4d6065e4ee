-- What the terminal knows of the server: which ops the server has (and their
-- number), the pull cursor, and the account this terminal is enrolled as.
-- Changed in the same transaction as the data it describes.

ALTER TABLE ops ADD COLUMN server_seq INTEGER;
-- 'local': recorded on this terminal; 'server': pulled from the server.
ALTER TABLE ops ADD COLUMN origin TEXT NOT NULL DEFAULT 'local' CHECK (origin IN ('local', 'server'));
CREATE UNIQUE INDEX ops_by_server_seq ON ops (server_seq) WHERE server_seq IS NOT NULL;

-- Ops the server refused stay in the timeline and in the outbox (state
-- 'rejected'); the case shows it until the grid leader deals with it.
ALTER TABLE cases ADD COLUMN rejected_ops INTEGER NOT NULL DEFAULT 0 CHECK (rejected_ops >= 0);
-- The grid the server placed the case in, once it has told us.
ALTER TABLE cases ADD COLUMN server_grid_id TEXT;

CREATE TABLE sync_account (
    only_one INTEGER PRIMARY KEY CHECK (only_one = 1),
    server_url TEXT NOT NULL,
    device_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    -- The device token. The database lives in the app's private storage.
    token TEXT NOT NULL,
    grid_ids TEXT NOT NULL,            -- JSON array
    cursor INTEGER NOT NULL DEFAULT 0,
    last_success_at INTEGER,
    enrolled_at INTEGER NOT NULL
);

-- Photo files of other terminals' cases still to fetch.
CREATE TABLE photo_downloads (
    sha256 TEXT PRIMARY KEY
);
