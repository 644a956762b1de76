-- Listings show each secret's field count. It is kept on the secret's row, so a page of a
-- listing reads only the secrets it shows, not also one version row per secret (those sit in
-- secret-id order, scattered across the table, which made a page cost grow with the table).
-- The count follows the version inserted as the current one (every write inserts its version
-- after moving `current_version` to it).
ALTER TABLE secrets ADD COLUMN field_count INTEGER NOT NULL DEFAULT 0;

UPDATE secrets SET field_count = (
    SELECT count(*) FROM secret_versions v, json_each(v.field_versions)
    WHERE v.secret_id = secrets.id AND v.version = secrets.current_version
);

CREATE TRIGGER secret_field_count AFTER INSERT ON secret_versions
BEGIN
    UPDATE secrets SET field_count = (SELECT count(*) FROM json_each(NEW.field_versions))
    WHERE id = NEW.secret_id AND current_version = NEW.version;
END;
