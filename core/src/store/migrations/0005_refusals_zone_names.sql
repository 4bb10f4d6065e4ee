-- What the grid leader needs to act on refused steps, and what the terminal
-- needs to speak like the centre: its clock and the names behind ids.

-- The server's stable code of a refusal (the reason keeps the words), and,
-- once the grid leader sent the step again, the id of the copy that went.
ALTER TABLE outbox ADD COLUMN reject_code TEXT;
ALTER TABLE outbox ADD COLUMN resent_as TEXT;
UPDATE outbox SET reject_code = substr(reject_reason, 1, instr(reject_reason, ':') - 1)
    WHERE state = 'rejected' AND instr(coalesce(reject_reason, ''), ':') > 0;

-- The deployment's time zone (IANA name) as the server last said it, and the
-- grid leader's own name as the centre knows it.
ALTER TABLE sync_account ADD COLUMN time_zone TEXT;
ALTER TABLE sync_account ADD COLUMN account_name TEXT;
-- When this terminal was first enrolled: what was recorded before it was
-- recorded under the local name (enrolled_at is the latest enrolment).
ALTER TABLE sync_account ADD COLUMN first_enrolled_at INTEGER;
UPDATE sync_account SET first_enrolled_at = enrolled_at;

-- The names people read for ids the ops mention (staff, grid leaders,
-- departments), as the server sent them with the ops.
CREATE TABLE display_names (
    kind TEXT NOT NULL CHECK (kind IN ('actor', 'department')),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);

-- When a case was recorded (for "recorded today" on the deployment's clock).
ALTER TABLE cases ADD COLUMN created_at INTEGER
    GENERATED ALWAYS AS (json_extract(body, '$.created_at')) VIRTUAL;
CREATE INDEX cases_by_created ON cases (created_at, id);
