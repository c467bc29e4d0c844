-- Names compare byte-wise (COLLATE "C") so List orders them as SQLite does.
CREATE TABLE objects (
	kind       text COLLATE "C" NOT NULL,
	name       text COLLATE "C" NOT NULL,
	revision   bigint NOT NULL,
	created_at bigint NOT NULL, -- unix nanoseconds
	updated_at bigint NOT NULL, -- unix nanoseconds
	labels     text   NOT NULL DEFAULT '{}',
	spec       text   NOT NULL DEFAULT '',
	status     text   NOT NULL DEFAULT '',
	PRIMARY KEY (kind, name)
);

-- object_labels answers the equality clauses of label selectors.
CREATE TABLE object_labels (
	kind  text COLLATE "C" NOT NULL,
	name  text COLLATE "C" NOT NULL,
	key   text COLLATE "C" NOT NULL,
	value text COLLATE "C" NOT NULL,
	PRIMARY KEY (kind, name, key),
	FOREIGN KEY (kind, name) REFERENCES objects (kind, name) ON DELETE CASCADE
);
CREATE INDEX object_labels_selector ON object_labels (kind, key, value, name);

CREATE TABLE audit_entries (
	seq        bigint PRIMARY KEY,
	time       bigint NOT NULL, -- unix nanoseconds
	actor      text   NOT NULL,
	action     text   NOT NULL,
	kind       text   NOT NULL,
	name       text   NOT NULL,
	revision   bigint NOT NULL,
	reason     text   NOT NULL,
	state_hash text   NOT NULL,
	prev_hash  text   NOT NULL,
	hash       text   NOT NULL
);
CREATE INDEX audit_entries_kind ON audit_entries (kind, seq);
CREATE INDEX audit_entries_actor ON audit_entries (actor, seq);

-- audit_head is the one row every writer locks (FOR UPDATE), so writers of
-- every replica serialise: the last entry's seq and hash.
CREATE TABLE audit_head (
	id   integer PRIMARY KEY CHECK (id = 1),
	seq  bigint  NOT NULL,
	hash text    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, 'sha256:0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_checkpoints (
	size      bigint NOT NULL,
	head      text   NOT NULL,
	time      bigint NOT NULL, -- unix nanoseconds
	key_id    text   NOT NULL,
	signature bytea  NOT NULL,
	PRIMARY KEY (size, key_id)
);
