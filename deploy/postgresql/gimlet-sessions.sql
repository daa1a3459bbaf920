-- Gimlet's sessions on PostgreSQL, shared by several app hosts: a role and
-- a database of their own. Run once, as a superuser, on the database server:
--
--   psql -U postgres -v password="'APP-PASSWORD'" -f gimlet-sessions.sql
--
-- The app creates its table (gimlet_sessions) on first use and sweeps
-- expired rows itself; the role needs nothing more than owning the database.
-- Each app host then uses the same URL:
--
--   GIMLET_BACKEND=postgresql://gimlet_app:APP-PASSWORD@10.0.0.5/gimlet_sessions
--
-- and pg_hba.conf lets the hosts in with a password (pg_hba-gimlet.conf).
CREATE ROLE gimlet_app LOGIN PASSWORD :password;
CREATE DATABASE gimlet_sessions OWNER gimlet_app;
