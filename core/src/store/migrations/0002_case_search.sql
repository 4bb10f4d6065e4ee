-- Text search over what grid leaders type. The trigram tokenizer needs no word
-- segmentation, which Chinese text does not have; queries of one or two
-- characters fall back to a scan (see store/query.rs).

CREATE VIRTUAL TABLE cases_search USING fts5 (
    title, description, address,
    content = 'cases', content_rowid = 'n', tokenize = 'trigram'
);

CREATE TRIGGER cases_search_insert AFTER INSERT ON cases BEGIN
    INSERT INTO cases_search (rowid, title, description, address)
    VALUES (new.n, new.title, new.description, new.address);
END;

CREATE TRIGGER cases_search_delete AFTER DELETE ON cases BEGIN
    INSERT INTO cases_search (cases_search, rowid, title, description, address)
    VALUES ('delete', old.n, old.title, old.description, old.address);
END;

CREATE TRIGGER cases_search_update AFTER UPDATE OF title, description, address ON cases BEGIN
    INSERT INTO cases_search (cases_search, rowid, title, description, address)
    VALUES ('delete', old.n, old.title, old.description, old.address);
    INSERT INTO cases_search (rowid, title, description, address)
    VALUES (new.n, new.title, new.description, new.address);
END;

-- Cases recorded before this migration become searchable too.
INSERT INTO cases_search (cases_search) VALUES ('rebuild');
