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
-- except the secret tables: login_throttle holds failed sign-ins (addresses and typed user names,
-- sometimes a password typed into the name box). Revoked now if the migrations already made it ...
SELECT format('REVOKE ALL ON TABLE %s FROM %I', to_regclass('public.login_throttle'), :'ro_user')
 WHERE to_regclass('public.login_throttle') IS NOT NULL \gexec
-- ... and, as the table is usually created later (`rnnlab db upgrade` runs after this script), by an
-- event trigger that revokes it whenever it is created (event triggers need a superuser, which the
-- postgres image's POSTGRES_USER is; without one the console's own check still refuses the table)
SELECT rolsuper AS is_superuser FROM pg_roles WHERE rolname = current_user \gset
\if :is_superuser
SELECT format($def$
CREATE OR REPLACE FUNCTION public.rnnlab_hide_secret_tables() RETURNS event_trigger
LANGUAGE plpgsql AS $body$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE object_type = 'table' LOOP
    IF r.object_identity = 'public.login_throttle' THEN
      EXECUTE format('REVOKE ALL ON TABLE %%s FROM %%I', r.object_identity, %L);
    END IF;
  END LOOP;
END $body$$def$, :'ro_user') \gexec
REVOKE ALL ON FUNCTION public.rnnlab_hide_secret_tables() FROM PUBLIC;
DROP EVENT TRIGGER IF EXISTS rnnlab_hide_secret_tables;
CREATE EVENT TRIGGER rnnlab_hide_secret_tables ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION public.rnnlab_hide_secret_tables();
\else
\echo 'rnnlab: not a superuser: no event trigger; run this script again after rnnlab db upgrade to revoke login_throttle'
\endif
SQL
echo "rnnlab: read-only role ${RNNLAB_READONLY_USER:-rnnlab_readonly} ready (statement_timeout ${RNNLAB_READONLY_TIMEOUT:-10s})"
