-- blobs holds documents content-addressed by their SHA-256 (evidence as
-- delivered by CI), stored as one encoding byte then the content, raw or
-- DEFLATE-compressed (see sqlstore/blobs.go). Rows are never updated;
-- objects refer to them by digest.
CREATE TABLE blobs (
	digest     TEXT    PRIMARY KEY,
	stored_size INTEGER NOT NULL, -- bytes stored: the encoding byte and the (compressed) content
	created_at INTEGER  NOT NULL, -- unix nanoseconds
	data       BLOB    NOT NULL
);
