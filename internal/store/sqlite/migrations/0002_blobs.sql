-- blobs holds documents content-addressed by their SHA-256 (evidence as
-- delivered by CI). Rows are never updated; objects refer to them by digest.
CREATE TABLE blobs (
	digest     TEXT    PRIMARY KEY,
	size       INTEGER  NOT NULL,
	created_at INTEGER  NOT NULL, -- unix nanoseconds
	data       BLOB    NOT NULL
);
