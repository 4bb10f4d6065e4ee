-- Gridcase sync server, schema version 5: no case out of sight.
-- Cases placed in a grid by hand, the deadline's own clock, and terminals
-- that enrol again.

-- A case whose point the map places in no grid (outside every grid, or in a
-- hole of one), filed under a grid by the top-level centre (a `place` op).
-- The map wins again if a later map places the point in a grid.
CREATE TABLE case_placements (
    case_id    TEXT PRIMARY KEY REFERENCES cases(id),
    grid_id    TEXT NOT NULL,
    placed_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- When the deadline in force was set (its dispatch): "near" is a share of the
-- time given. And the chases made at or after it, which are what counts
-- toward automatic escalation.
ALTER TABLE case_desk ADD COLUMN deadline_set_at INTEGER;
ALTER TABLE case_desk ADD COLUMN overdue_chases INTEGER NOT NULL DEFAULT 0;
UPDATE case_desk SET deadline_set_at = (
    SELECT json_extract(o.body, '$.device_time') FROM ops o
    WHERE o.case_id = case_desk.case_id AND json_extract(o.body, '$.kind') = 'dispatch'
    ORDER BY o.seq DESC LIMIT 1);
UPDATE case_desk SET overdue_chases = (
    SELECT COUNT(*) FROM ops o
    WHERE o.case_id = case_desk.case_id AND json_extract(o.body, '$.kind') = 'chase'
      AND json_extract(o.body, '$.device_time') >= case_desk.deadline
      AND o.seq > COALESCE((SELECT MAX(p.seq) FROM ops p
          WHERE p.case_id = case_desk.case_id AND json_extract(p.body, '$.kind') = 'dispatch'), 0))
WHERE deadline IS NOT NULL AND deadline_set_at IS NOT NULL;

-- The SHA-256 of the terminal's enrolment key, so a new enrolment of the same
-- terminal retires the device it replaces (`replaced_by`, and `revoked_at`
-- set: its token stops working).
ALTER TABLE devices ADD COLUMN enrolment_key_hash BLOB;
ALTER TABLE devices ADD COLUMN replaced_by TEXT REFERENCES devices(id);
UPDATE devices SET enrolment_key_hash = (
    SELECT e.enrolment_key_hash FROM enrol_codes e WHERE e.device_id = devices.id
    ORDER BY e.used_at DESC LIMIT 1);
CREATE INDEX devices_by_enrolment_key ON devices(enrolment_key_hash)
    WHERE enrolment_key_hash IS NOT NULL;
