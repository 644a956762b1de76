-- The head follows the log: an append made as one statement of its own (the writer's fast path
-- for entries that go with no write) moves the head in the same implicit transaction.
CREATE TRIGGER audit_head_follows AFTER INSERT ON audit_log
WHEN NEW.seq > (SELECT seq FROM audit_head WHERE id = 1)
BEGIN
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
END;
