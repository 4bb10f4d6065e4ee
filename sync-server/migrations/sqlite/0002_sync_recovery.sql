-- Gridcase sync server, schema version 2: recovering from what goes wrong.

-- The id of this database's history of sequence numbers. Terminals send it
-- back with their cursor; `admin restore` changes it, so a terminal whose
-- cursor belongs to the future the restore lost starts over from 0.
CREATE TABLE server_history (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    history_id  TEXT NOT NULL
) STRICT;
INSERT INTO server_history (id, history_id) VALUES (1, lower(hex(randomblob(16))));

-- The SHA-256 of the key the terminal sent with a code's first use: the same
-- terminal may repeat the exchange if the answer was lost.
ALTER TABLE enrol_codes ADD COLUMN enrolment_key_hash BLOB;

-- A case left the units listed (a new map moved it). `seq` shares the
-- numbering of `ops`, so a pull tells the accounts of those units in order.
CREATE TABLE case_departures (
    seq      INTEGER NOT NULL,
    case_id  TEXT NOT NULL REFERENCES cases(id),
    unit_id  TEXT NOT NULL,
    PRIMARY KEY (seq, unit_id)
) STRICT, WITHOUT ROWID;
