-- Gridcase sync server on PostgreSQL, schema version 1: what SQLite's
-- migrations 0001-0005 add up to, as PostgreSQL would have it.
--
-- Times are UTC milliseconds in bigint, as everywhere else in Gridcase (the
-- terminal, the wire, SQLite, the case JSON): one representation compared
-- exactly (a deadline the scheduler chased is compared with the case's own
-- deadline), converted to people's time only at the edge. Ids the server and
-- the terminals make (UUIDv7) are uuid; grid unit ids come from the imported
-- map and are text; actor ids name more than accounts (`server`, `admin`,
-- `open311:…`) and are text. Hashes of tokens and codes are bytea (SHA-256,
-- 32 bytes). A case's state and an op's body are jsonb: figures, exports and
-- the scheduler read into them.
--
-- Numbering (see store/postgres/mod.rs): `seq` of ops and departures, and
-- `server_seq` of push answers, are taken at the end of the writing
-- transaction from `ledger_clock`; until then such a row carries `pending`
-- (its order in the transaction) and no number. Rows of other transactions
-- are never seen pending: they are numbered before they commit.

-- People who use terminals. Only grid leaders for now.
CREATE TABLE accounts (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('grid_leader')),
    created_at  bigint NOT NULL
);

-- The units an account answers for; it sees the cases at or below them.
CREATE TABLE account_grids (
    account_id  uuid NOT NULL REFERENCES accounts(id),
    grid_id     text NOT NULL,
    PRIMARY KEY (account_id, grid_id)
);

-- Enrolled terminals. Only the SHA-256 of the token is kept; a terminal that
-- enrols again (the same enrolment key) retires the device it was
-- (`replaced_by`, with `revoked_at`).
CREATE TABLE devices (
    id                  uuid PRIMARY KEY,
    account_id          uuid NOT NULL REFERENCES accounts(id),
    name                text NOT NULL,
    token_hash          bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at          bigint NOT NULL,
    last_push_at        bigint,
    revoked_at          bigint,
    enrolment_key_hash  bytea CHECK (octet_length(enrolment_key_hash) = 32),
    replaced_by         uuid REFERENCES devices(id),
    CHECK (replaced_by IS NULL OR revoked_at IS NOT NULL)
);
CREATE INDEX devices_by_account ON devices(account_id);
CREATE INDEX devices_by_enrolment_key ON devices(enrolment_key_hash)
    WHERE enrolment_key_hash IS NOT NULL;

-- One-time enrolment codes, by the SHA-256 of their normalised text; a used
-- code names the device it made and the key of the terminal that used it.
CREATE TABLE enrol_codes (
    code_hash           bytea PRIMARY KEY CHECK (octet_length(code_hash) = 32),
    account_id          uuid NOT NULL REFERENCES accounts(id),
    created_at          bigint NOT NULL,
    expires_at          bigint NOT NULL,
    used_at             bigint,
    device_id           uuid REFERENCES devices(id),
    enrolment_key_hash  bytea,
    CHECK ((used_at IS NULL) = (device_id IS NULL))
);

-- The grid map, replaced whole by an import; `version` grows with each one,
-- so every instance notices an import made anywhere (its cache is keyed by it).
CREATE TABLE grid_map (
    id           smallint PRIMARY KEY CHECK (id = 1),
    version      bigint NOT NULL CHECK (version > 0),
    geojson      text NOT NULL,
    unit_count   integer NOT NULL CHECK (unit_count >= 0),
    imported_at  bigint NOT NULL
);

-- The id of this database's history of sequence numbers (see protocol.rs);
-- 32 hex digits, as SQLite's.
CREATE TABLE server_history (
    id          smallint PRIMARY KEY CHECK (id = 1),
    history_id  text NOT NULL CHECK (history_id ~ '^[0-9a-f]{32}$')
);
INSERT INTO server_history (id, history_id)
    VALUES (1, replace(gen_random_uuid()::text, '-', ''));

-- The last server sequence number taken. Its one row is the lock writers
-- number under, and, in a reader's snapshot, the commit horizon.
CREATE TABLE ledger_clock (
    id    smallint PRIMARY KEY CHECK (id = 1),
    last  bigint NOT NULL CHECK (last >= 0)
);
INSERT INTO ledger_clock (id, last) VALUES (1, 0);

-- Departments (职能部门) cases are dispatched to; `unit_id`: the unit whose
-- cases it serves (NULL: any).
CREATE TABLE departments (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    unit_id     text,
    created_at  bigint NOT NULL
);

-- People who work at the centre's dashboard (see SQLite's 0003).
CREATE TABLE staff (
    id             uuid PRIMARY KEY,
    login          text NOT NULL UNIQUE,
    name           text NOT NULL,
    role           text NOT NULL CHECK (role IN ('dispatcher', 'department', 'supervisor')),
    unit_id        text,
    department_id  uuid REFERENCES departments(id),
    password_hash  text NOT NULL,
    failed_logins  integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until   bigint,
    created_at     bigint NOT NULL,
    CHECK ((role = 'department') = (department_id IS NOT NULL)),
    CHECK ((role = 'department') = (unit_id IS NULL))
);
CREATE INDEX staff_dispatchers_by_unit ON staff(unit_id) WHERE role = 'dispatcher';

-- Logged-in dashboard sessions, by the SHA-256 of the cookie's token.
CREATE TABLE staff_sessions (
    token_hash  bytea PRIMARY KEY,
    staff_id    uuid NOT NULL REFERENCES staff(id),
    csrf_token  text NOT NULL,
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL
);
CREATE INDEX staff_sessions_by_staff ON staff_sessions(staff_id);

-- Each case as its accepted ops add up (the Case as JSON in `state`), with the
-- grid the server's map places it in. What figures and exports read off the
-- case are generated from it, so they can never disagree with it.
CREATE TABLE cases (
    id           uuid PRIMARY KEY,
    grid_id      text,
    reported_by  text NOT NULL,
    status       text NOT NULL,
    state        jsonb NOT NULL,
    updated_at   bigint NOT NULL,
    category     text GENERATED ALWAYS AS (state ->> 'category') STORED,
    created_at   bigint GENERATED ALWAYS AS ((state ->> 'created_at')::bigint) STORED,
    department   text GENERATED ALWAYS AS (state ->> 'department') STORED,
    -- The deadline of the dispatch in force (not the grid leader's proposal).
    deadline     bigint GENERATED ALWAYS AS ((state ->> 'deadline')::bigint) STORED,
    rating_face  text GENERATED ALWAYS AS (state -> 'rating' ->> 'face') STORED,
    -- When the department last reported it resolved (on the timeline, not in
    -- the case): set by the store in the transaction that appends the op.
    resolved_at  bigint
);
CREATE INDEX cases_by_reporter ON cases(reported_by);
CREATE INDEX cases_by_grid ON cases(grid_id);
CREATE INDEX cases_by_created ON cases(created_at);
CREATE INDEX cases_by_category ON cases(category, created_at);

-- The case's grid and every unit above it: visible to an account one of
-- whose grids is listed (GridMap::is_within, as a join).
CREATE TABLE case_scopes (
    case_id  uuid NOT NULL REFERENCES cases(id),
    unit_id  text NOT NULL,
    PRIMARY KEY (case_id, unit_id)
);
CREATE INDEX case_scopes_by_unit ON case_scopes(unit_id, case_id);

-- Accepted ops in server order. `seq` is the number pulls page by (NULL
-- only while its transaction is writing: `pending` then); `device_id` is
-- NULL for ops the server itself made.
CREATE TABLE ops (
    id         uuid PRIMARY KEY,
    seq        bigint UNIQUE,
    pending    integer,
    case_id    uuid NOT NULL REFERENCES cases(id),
    device_id  uuid REFERENCES devices(id),
    body       jsonb NOT NULL,
    CHECK ((seq IS NULL) <> (pending IS NULL))
);
CREATE INDEX ops_by_case ON ops(case_id, seq);
CREATE INDEX ops_pending ON ops(pending) WHERE pending IS NOT NULL;

-- What the server answered for every op a device pushed (deferrals
-- excepted), so a retried push gets the same answer and changes nothing.
-- `server_seq` is the number the op first got (`pending` until numbered).
CREATE TABLE push_outcomes (
    op_id       uuid PRIMARY KEY,
    device_id   uuid NOT NULL REFERENCES devices(id),
    status      text NOT NULL CHECK (status IN ('accepted', 'rejected')),
    server_seq  bigint,
    pending     integer,
    code        text,
    reason      text,
    decided_at  bigint NOT NULL,
    CHECK (server_seq IS NULL OR pending IS NULL),
    CHECK ((status = 'accepted') = (server_seq IS NOT NULL OR pending IS NOT NULL))
);
CREATE INDEX push_outcomes_pending ON push_outcomes(pending) WHERE pending IS NOT NULL;

-- Which cases use which photo files (SHA-256, photos and thumbnails), to
-- decide who may download them.
CREATE TABLE case_photos (
    sha256   bytea NOT NULL CHECK (octet_length(sha256) = 32),
    case_id  uuid NOT NULL REFERENCES cases(id),
    PRIMARY KEY (sha256, case_id)
);

-- A case left the units listed (a new map moved it); numbered like an op, so
-- a pull tells the accounts of those units in order.
CREATE TABLE case_departures (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq      bigint,
    pending  integer,
    case_id  uuid NOT NULL REFERENCES cases(id),
    unit_id  text NOT NULL,
    CHECK ((seq IS NULL) <> (pending IS NULL)),
    UNIQUE (seq, unit_id)
);
CREATE INDEX case_departures_pending ON case_departures(pending) WHERE pending IS NOT NULL;

-- A case the map places in no grid, filed under a grid by the top-level
-- centre (a `place` op); the map wins again if a later map places it.
CREATE TABLE case_placements (
    case_id    uuid PRIMARY KEY REFERENCES cases(id),
    grid_id    text NOT NULL,
    placed_at  bigint NOT NULL
);

-- Where a received case stands at the centre (see SQLite's 0003 and 0005).
CREATE TABLE case_desk (
    case_id             uuid PRIMARY KEY REFERENCES cases(id),
    queue_unit_id       text,
    department_id       uuid REFERENCES departments(id),
    category            text NOT NULL,
    title               text NOT NULL,
    deadline            bigint,
    received_at         bigint NOT NULL,
    reopen_reason       text,
    near_chased_for     bigint,
    overdue_chased_for  bigint,
    deadline_set_at     bigint,
    overdue_chases      integer NOT NULL DEFAULT 0 CHECK (overdue_chases >= 0)
);
CREATE INDEX case_desk_by_queue ON case_desk(queue_unit_id);
CREATE INDEX case_desk_by_department ON case_desk(department_id);
CREATE INDEX case_desk_by_deadline ON case_desk(deadline);

-- One-time links for a resident to rate a case on their own phone.
CREATE TABLE rating_links (
    token_hash  bytea PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases(id),
    device_id   uuid NOT NULL REFERENCES devices(id),
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL,
    used_at     bigint
);
CREATE INDEX rating_links_by_case ON rating_links(case_id);

-- Clients allowed to file requests through Open311 (the key's SHA-256 only).
CREATE TABLE open311_keys (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    key_hash    bytea NOT NULL UNIQUE,
    created_at  bigint NOT NULL,
    revoked_at  bigint
);

-- Cases filed through Open311, with the reporter's contact details (never
-- served by Open311 GET nor by an export).
CREATE TABLE open311_requests (
    case_id            uuid PRIMARY KEY REFERENCES cases(id),
    key_id             uuid NOT NULL REFERENCES open311_keys(id),
    email              text,
    first_name         text,
    last_name          text,
    phone              text,
    client_device_id   text,
    client_account_id  text,
    media_url          text,
    requested_at       bigint NOT NULL
);
CREATE INDEX open311_requests_by_key ON open311_requests(key_id);
