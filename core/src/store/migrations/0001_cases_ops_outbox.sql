-- The terminal's cases, their operations (the timeline) and the outbox of
-- operations not yet acknowledged by the server.

CREATE TABLE cases (
    n INTEGER PRIMARY KEY,             -- stable rowid for the search index
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    category TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    address TEXT,
    lat REAL,
    lon REAL,
    grid_id TEXT,
    occurred_at INTEGER NOT NULL,
    proposed_deadline INTEGER,
    deadline INTEGER,
    -- The deadline that counts, with "no deadline" sorting last.
    deadline_key INTEGER GENERATED ALWAYS AS
        (coalesce(deadline, proposed_deadline, 9223372036854775807)) VIRTUAL,
    updated_at INTEGER NOT NULL,
    -- Operations of this case still in the outbox.
    pending_ops INTEGER NOT NULL DEFAULT 0 CHECK (pending_ops >= 0),
    -- The whole case as the domain model serialises it; the columns above are
    -- copies for filtering and sorting.
    body TEXT NOT NULL
);

CREATE INDEX cases_by_change ON cases (updated_at, id);
CREATE INDEX cases_by_deadline ON cases (deadline_key, id);
CREATE INDEX cases_by_status_change ON cases (status, updated_at, id);
CREATE INDEX cases_by_status_deadline ON cases (status, deadline_key, id);
CREATE INDEX cases_by_grid_change ON cases (grid_id, updated_at, id);
CREATE INDEX cases_by_grid_deadline ON cases (grid_id, deadline_key, id);
CREATE INDEX cases_waiting_to_sync ON cases (updated_at, id) WHERE pending_ops > 0;

CREATE TABLE ops (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- the order ops happened on this terminal
    id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL REFERENCES cases (id),
    kind TEXT NOT NULL,
    device_time INTEGER NOT NULL,
    body TEXT NOT NULL                       -- the op as the domain model serialises it
);

CREATE INDEX ops_by_case ON ops (case_id, seq);

CREATE TABLE outbox (
    op_seq INTEGER PRIMARY KEY REFERENCES ops (seq),
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'rejected')),
    attempts INTEGER NOT NULL DEFAULT 0,
    reject_reason TEXT
);

CREATE TABLE photos (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases (id),
    op_id TEXT NOT NULL REFERENCES ops (id),
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    thumb_sha256 TEXT NOT NULL,
    thumb_bytes INTEGER NOT NULL,
    captured_at INTEGER,
    lat REAL,
    lon REAL,
    accuracy_m REAL,
    added_at INTEGER NOT NULL
);

CREATE INDEX photos_by_case ON photos (case_id, added_at);
CREATE INDEX photos_by_file ON photos (sha256);
CREATE INDEX photos_by_thumb ON photos (thumb_sha256);

-- The grid map the terminal was given, as the GeoJSON it came in.
CREATE TABLE grid_map (
    only_one INTEGER PRIMARY KEY CHECK (only_one = 1),
    geojson TEXT NOT NULL,
    loaded_at INTEGER NOT NULL
);
