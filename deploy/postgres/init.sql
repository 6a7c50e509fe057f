-- One database and one role per service: services never read each
-- other's data. Runs once, when the PostgreSQL volume is first created.
CREATE ROLE findings LOGIN PASSWORD 'findings';
CREATE ROLE tracker LOGIN PASSWORD 'tracker';
CREATE ROLE metrics LOGIN PASSWORD 'metrics';
CREATE ROLE notify LOGIN PASSWORD 'notify';
CREATE DATABASE findings OWNER findings;
CREATE DATABASE tracker OWNER tracker;
CREATE DATABASE metrics OWNER metrics;
CREATE DATABASE notify OWNER notify;
