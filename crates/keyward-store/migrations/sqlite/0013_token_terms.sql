-- A token's remaining DESIGN §4 fields, covered by the row MAC (tokens' layout 4): its type
-- ('service'), a periodic token's period in seconds (0: not periodic), the requests it may still
-- make (0: unlimited) and whether it may be renewed.
ALTER TABLE tokens ADD COLUMN token_type TEXT NOT NULL DEFAULT 'service';
ALTER TABLE tokens ADD COLUMN period BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN num_uses BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN renewable BIGINT NOT NULL DEFAULT 1;
