# Shared by the bench scripts (sourced): fresh PostgreSQL databases beside KEYWARD_TEST_DATABASE_URL's.

# fresh_pg_db NAME: creates the empty database NAME on the server of KEYWARD_TEST_DATABASE_URL and
# prints its URL (same user, host and parameters).
fresh_pg_db() {
  local url=${KEYWARD_TEST_DATABASE_URL:?set it (scripts/pg-test-db)} base query
  base=${url%%\?*}
  query=${url#"$base"}
  psql "$url" -qc "CREATE DATABASE $1" >&2 || return 1
  echo "${base%/*}/$1$query"
}

# drop_pg_db NAME: drops the database NAME (connections closed), quietly.
drop_pg_db() {
  psql "$KEYWARD_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 || true
}
