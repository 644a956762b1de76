-- Listings show each secret's field count. It is kept on the secret's row, so a page of a
-- listing reads only the secrets it shows, not also one version row per secret (those sit in
-- secret-id order, scattered across the table, which made a page cost grow with the table).
-- The count follows the version inserted as the current one (every write inserts its version
-- after moving `current_version` to it).
ALTER TABLE secrets ADD COLUMN field_count BIGINT NOT NULL DEFAULT 0;

UPDATE secrets s SET field_count = (SELECT count(*) FROM json_object_keys(v.field_versions::json))
FROM secret_versions v
WHERE v.secret_id = s.id AND v.version = s.current_version;

CREATE FUNCTION secret_field_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE secrets SET field_count = (SELECT count(*) FROM json_object_keys(NEW.field_versions::json))
    WHERE id = NEW.secret_id AND current_version = NEW.version;
    RETURN NULL;
END;
$$;

CREATE TRIGGER secret_field_count AFTER INSERT ON secret_versions
FOR EACH ROW EXECUTE FUNCTION secret_field_count();
