-- Gridcase sync server, schema version 1.
-- Times are UTC milliseconds. Ids are UUIDv7 strings, except grid unit ids,
-- which come from the imported map.

-- People who use terminals. Only grid leaders for now.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('grid_leader')),
    created_at  INTEGER NOT NULL
) STRICT;

-- The units an account answers for; it sees the cases at or below them.
CREATE TABLE account_grids (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    grid_id     TEXT NOT NULL,
    PRIMARY KEY (account_id, grid_id)
) STRICT, WITHOUT ROWID;

-- Enrolled terminals. Only the SHA-256 of the token is kept.
CREATE TABLE devices (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    name          TEXT NOT NULL,
    token_hash    BLOB NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_push_at  INTEGER,
    revoked_at    INTEGER
) STRICT;
CREATE INDEX devices_by_account ON devices(account_id);

-- One-time enrolment codes, by the SHA-256 of their normalised text.
CREATE TABLE enrol_codes (
    code_hash   BLOB PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    device_id   TEXT REFERENCES devices(id)
) STRICT;

-- The grid map, replaced whole by an import; `version` grows with each one so
-- a running server notices an import made by the admin command.
CREATE TABLE grid_map (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    version      INTEGER NOT NULL,
    geojson      TEXT NOT NULL,
    unit_count   INTEGER NOT NULL,
    imported_at  INTEGER NOT NULL
) STRICT;

-- Each case as its accepted ops add up (the Case as JSON in `state`), with the
-- grid the server's map places it in.
CREATE TABLE cases (
    id           TEXT PRIMARY KEY,
    grid_id      TEXT,
    reported_by  TEXT NOT NULL,
    status       TEXT NOT NULL,
    state        TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX cases_by_reporter ON cases(reported_by);
CREATE INDEX cases_by_grid ON cases(grid_id);

-- The case's grid and every unit above it: a case is visible to an account
-- one of whose grids is listed here (GridMap::is_within, as a join).
CREATE TABLE case_scopes (
    case_id  TEXT NOT NULL REFERENCES cases(id),
    unit_id  TEXT NOT NULL,
    PRIMARY KEY (case_id, unit_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX case_scopes_by_unit ON case_scopes(unit_id);

-- Accepted ops in server order. `seq` is the server sequence number pulls
-- page by; `device_id` is NULL for ops the server itself made.
CREATE TABLE ops (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    case_id    TEXT NOT NULL REFERENCES cases(id),
    device_id  TEXT REFERENCES devices(id),
    body       TEXT NOT NULL
) STRICT;
CREATE INDEX ops_by_case ON ops(case_id, seq);

-- What the server answered for every op a device pushed (deferrals excepted),
-- so a retried push gets the same answer and changes nothing.
CREATE TABLE push_outcomes (
    op_id       TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices(id),
    status      TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
    server_seq  INTEGER,
    code        TEXT,
    reason      TEXT,
    decided_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Which cases use which photo files (photos and thumbnails), to decide who may
-- download them. The files themselves live content-addressed in photos/.
CREATE TABLE case_photos (
    sha256   TEXT NOT NULL,
    case_id  TEXT NOT NULL REFERENCES cases(id),
    PRIMARY KEY (sha256, case_id)
) STRICT, WITHOUT ROWID;
