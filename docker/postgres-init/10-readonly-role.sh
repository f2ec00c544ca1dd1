#!/bin/sh
# Create the read-only role of the dashboard's SQL console (run once, by the postgres image, when its
# data volume is first initialized; safe to run again by hand). Reads from the environment:
#   POSTGRES_USER, POSTGRES_DB           the owner of the tables (the role `rnnlab db upgrade` uses)
#   RNNLAB_READONLY_USER                 role name (default rnnlab_readonly)
#   RNNLAB_READONLY_PASSWORD             its password (required)
#   RNNLAB_READONLY_TIMEOUT              its statement_timeout (default 10s)
set -eu
: "${RNNLAB_READONLY_PASSWORD:?set RNNLAB_READONLY_PASSWORD}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v ro_user="${RNNLAB_READONLY_USER:-rnnlab_readonly}" \
  -v ro_password="$RNNLAB_READONLY_PASSWORD" \
  -v ro_timeout="${RNNLAB_READONLY_TIMEOUT:-10s}" \
  -v owner="$POSTGRES_USER" \
  -v db="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOREPLICATION NOBYPASSRLS', :'ro_user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'ro_user') \gexec
ALTER ROLE :"ro_user" WITH LOGIN NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT 20
  PASSWORD :'ro_password';
-- every session of this role is read-only and bounded in time
ALTER ROLE :"ro_user" SET default_transaction_read_only = on;
ALTER ROLE :"ro_user" SET statement_timeout = :'ro_timeout';
ALTER ROLE :"ro_user" SET idle_in_transaction_session_timeout = '60s';
-- it may connect and read, nothing else
GRANT CONNECT ON DATABASE :"db" TO :"ro_user";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"ro_user";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"ro_user";
-- and reads the tables that the migrations create later, as the owner role
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"ro_user";
SQL
echo "rnnlab: read-only role ${RNNLAB_READONLY_USER:-rnnlab_readonly} ready (statement_timeout ${RNNLAB_READONLY_TIMEOUT:-10s})"
