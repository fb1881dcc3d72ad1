-- Run once, when the PostgreSQL volume is new (/docker-entrypoint-initdb.d): each service that keeps
-- state gets its own database on the one server.
CREATE DATABASE converter;
CREATE DATABASE submitter;
CREATE DATABASE challenger;
CREATE DATABASE vm_worker;  -- the vm-workers' job queue
