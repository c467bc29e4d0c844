CREATE TABLE objects (
	kind       TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	revision   INTEGER NOT NULL,
	created_at INTEGER NOT NULL, -- unix nanoseconds
	updated_at INTEGER NOT NULL, -- unix nanoseconds
	labels     TEXT    NOT NULL DEFAULT '{}',
	spec       TEXT    NOT NULL DEFAULT '',
	status     TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (kind, name)
);

-- object_labels answers the equality clauses of label selectors.
CREATE TABLE object_labels (
	kind  TEXT NOT NULL,
	name  TEXT NOT NULL,
	key   TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (kind, name, key),
	FOREIGN KEY (kind, name) REFERENCES objects (kind, name) ON DELETE CASCADE
);
CREATE INDEX object_labels_selector ON object_labels (kind, key, value, name);

CREATE TABLE audit_entries (
	seq        INTEGER PRIMARY KEY,
	time       INTEGER NOT NULL, -- unix nanoseconds
	actor      TEXT    NOT NULL,
	action     TEXT    NOT NULL,
	kind       TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	revision   INTEGER NOT NULL,
	reason     TEXT    NOT NULL,
	state_hash TEXT    NOT NULL,
	prev_hash  TEXT    NOT NULL,
	hash       TEXT    NOT NULL
);
CREATE INDEX audit_entries_kind ON audit_entries (kind, seq);
CREATE INDEX audit_entries_actor ON audit_entries (actor, seq);

-- audit_head is the one row every writer locks: the last entry's seq and hash.
CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, 'sha256:0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_checkpoints (
	size      INTEGER NOT NULL,
	head      TEXT    NOT NULL,
	time      INTEGER NOT NULL, -- unix nanoseconds
	key_id    TEXT    NOT NULL,
	signature BLOB    NOT NULL,
	PRIMARY KEY (size, key_id)
);
