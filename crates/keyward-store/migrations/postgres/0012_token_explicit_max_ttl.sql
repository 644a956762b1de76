-- A token's hard lifetime cap (DESIGN §4 explicit_max_ttl): renewals never go past created_at
-- plus it (0: the server's maximum). Covered by the row MAC (tokens' layout 3).
ALTER TABLE tokens ADD COLUMN explicit_max_ttl BIGINT NOT NULL DEFAULT 0;
