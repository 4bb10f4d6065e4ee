-- Gridcase sync server, schema version 2: the centre (综治中心).
-- Departments and staff, staff sessions, where each case stands at the centre
-- (its queue, its department, its deadline chases), and residents' rating links.

-- Departments (职能部门) cases are dispatched to. `unit_id`: the unit whose
-- cases the department serves (NULL: any); a county department does not take
-- another county's cases.
CREATE TABLE departments (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    unit_id     TEXT,
    created_at  INTEGER NOT NULL
) STRICT;

-- People who work at the centre's dashboard. A dispatcher and a supervisor
-- answer for a unit (and everything under it); a department handler for one
-- department. Only the Argon2id PHC string of the password is kept.
CREATE TABLE staff (
    id               TEXT PRIMARY KEY,
    login            TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('dispatcher', 'department', 'supervisor')),
    unit_id          TEXT,
    department_id    TEXT REFERENCES departments(id),
    password_hash    TEXT NOT NULL,
    -- Consecutive wrong passwords, and until when the login is refused.
    failed_logins    INTEGER NOT NULL DEFAULT 0,
    locked_until     INTEGER,
    created_at       INTEGER NOT NULL,
    CHECK ((role = 'department') = (department_id IS NOT NULL)),
    CHECK ((role = 'department') = (unit_id IS NULL))
) STRICT;
CREATE INDEX staff_dispatchers_by_unit ON staff(unit_id) WHERE role = 'dispatcher';

-- Logged-in dashboard sessions, by the SHA-256 of the cookie's token.
CREATE TABLE staff_sessions (
    token_hash  BLOB PRIMARY KEY,
    staff_id    TEXT NOT NULL REFERENCES staff(id),
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX staff_sessions_by_staff ON staff_sessions(staff_id);

-- Where a received case stands at the centre, kept in step with its ops:
-- the unit whose dispatchers must act on it (its own area's; the level above
-- once escalated), the department it is dispatched to, and the deadline
-- chases already made. Category, title and deadline are copied out of the
-- case for the queue's filters.
CREATE TABLE case_desk (
    case_id             TEXT PRIMARY KEY REFERENCES cases(id),
    queue_unit_id       TEXT,
    department_id       TEXT REFERENCES departments(id),
    category            TEXT NOT NULL,
    title               TEXT NOT NULL,
    deadline            INTEGER,
    received_at         INTEGER NOT NULL,
    -- Why the case came back (not done on site, or a frowny face).
    reopen_reason       TEXT,
    -- The deadline the near-deadline / overdue chase was made for: a new
    -- deadline (a dispatch) arms them again.
    near_chased_for     INTEGER,
    overdue_chased_for  INTEGER
) STRICT;
CREATE INDEX case_desk_by_queue ON case_desk(queue_unit_id);
CREATE INDEX case_desk_by_department ON case_desk(department_id);
CREATE INDEX case_desk_by_deadline ON case_desk(deadline);

-- One-time links for a resident to rate a case on their own phone, by the
-- SHA-256 of the token in the link.
CREATE TABLE rating_links (
    token_hash  BLOB PRIMARY KEY,
    case_id     TEXT NOT NULL REFERENCES cases(id),
    device_id   TEXT NOT NULL REFERENCES devices(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX rating_links_by_case ON rating_links(case_id);
