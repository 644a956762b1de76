-- Credential-proxy routes: upstream origin, secret path and injection recipes (JSON). No secret.
CREATE TABLE proxy_routes (
    name TEXT PRIMARY KEY,
    route TEXT NOT NULL
);
