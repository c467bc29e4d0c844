-- replicas are the airlock servers sharing this database. Each writes a
-- heartbeat (last_seen) every few seconds; `airlock cluster status` lists
-- those seen recently. Times are unix milliseconds of the database's clock.
CREATE TABLE replicas (
	id         TEXT   PRIMARY KEY,
	address    TEXT   NOT NULL,
	version    TEXT   NOT NULL,
	started_at BIGINT NOT NULL,
	last_seen  BIGINT NOT NULL
);

-- leases are held by one replica at a time until expires_at, renewed by
-- their holder; the "reconcilers" lease decides which replica runs the
-- background loops.
CREATE TABLE leases (
	name        TEXT   PRIMARY KEY,
	holder      TEXT   NOT NULL,
	acquired_at BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL
);
