-- Open311 keys and requests, and what figures and exports read off a case.

-- Clients allowed to file requests through Open311. Only the SHA-256 of the
-- key is kept.
CREATE TABLE open311_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    key_hash    BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

-- Cases filed through Open311: which client filed them, and the reporter's
-- contact details so the centre can call back. Never served by Open311 GET
-- nor by an export.
CREATE TABLE open311_requests (
    case_id           TEXT PRIMARY KEY REFERENCES cases(id),
    key_id            TEXT NOT NULL REFERENCES open311_keys(id),
    email             TEXT,
    first_name        TEXT,
    last_name         TEXT,
    phone             TEXT,
    client_device_id  TEXT,
    client_account_id TEXT,
    media_url         TEXT,
    requested_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX open311_requests_by_key ON open311_requests(key_id);

-- Read off the stored case, so they can never disagree with it and need no
-- backfill; virtual, so they cost nothing until read or indexed.
ALTER TABLE cases ADD COLUMN category TEXT
    GENERATED ALWAYS AS (json_extract(state, '$.category')) VIRTUAL;
ALTER TABLE cases ADD COLUMN created_at INTEGER
    GENERATED ALWAYS AS (json_extract(state, '$.created_at')) VIRTUAL;
ALTER TABLE cases ADD COLUMN department TEXT
    GENERATED ALWAYS AS (json_extract(state, '$.department')) VIRTUAL;
-- The deadline of the dispatch in force (not the grid leader's proposal).
ALTER TABLE cases ADD COLUMN deadline INTEGER
    GENERATED ALWAYS AS (json_extract(state, '$.deadline')) VIRTUAL;
ALTER TABLE cases ADD COLUMN rating_face TEXT
    GENERATED ALWAYS AS (json_extract(state, '$.rating.face')) VIRTUAL;

-- When the department last reported the case resolved: on the timeline, not
-- in the case, so kept by a trigger in the transaction that records the op.
ALTER TABLE cases ADD COLUMN resolved_at INTEGER;
UPDATE cases SET resolved_at = (
    SELECT json_extract(o.body, '$.device_time') FROM ops o
    WHERE o.case_id = cases.id AND json_extract(o.body, '$.kind') = 'resolve'
    ORDER BY o.seq DESC LIMIT 1);
CREATE TRIGGER cases_resolved_at AFTER INSERT ON ops
WHEN json_extract(NEW.body, '$.kind') = 'resolve'
BEGIN
    UPDATE cases SET resolved_at = json_extract(NEW.body, '$.device_time')
    WHERE id = NEW.case_id;
END;

CREATE INDEX cases_by_created ON cases(created_at);
CREATE INDEX cases_by_category ON cases(category, created_at);
