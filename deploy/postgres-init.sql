-- Runs once, when the postgres container initialises an empty data volume
-- (docker-entrypoint-initdb.d). Changing it later has no effect on an existing
-- volume: `docker compose down -v` to start over, or apply the change by hand.
--
-- The passwords below are the docker-compose defaults that DATABASE_URL and the
-- temporal service use. For anything reachable from outside this host, change them
-- here AND in docker-compose.yml / .env (DATABASE_URL) together.

-- Parley's own database.
CREATE ROLE parley WITH LOGIN PASSWORD 'parley';
CREATE DATABASE parley OWNER parley;

-- Temporal persistence. temporalio/auto-setup creates its databases and schemas
-- itself with this role (hence CREATEDB), with one exception: it skips creating the
-- database whose name equals the user name ("temporal"), expecting it to exist
-- already, so that one is created here. temporal_visibility is created by auto-setup.
CREATE ROLE temporal WITH LOGIN CREATEDB PASSWORD 'temporal';
CREATE DATABASE temporal OWNER temporal;
