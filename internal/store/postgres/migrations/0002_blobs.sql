-- blobs holds documents content-addressed by their SHA-256 (evidence as
-- delivered by CI). Rows are never updated; objects refer to them by digest.
CREATE TABLE blobs (
	digest     TEXT    PRIMARY KEY,
	size       BIGINT  NOT NULL,
	created_at BIGINT  NOT NULL, -- unix nanoseconds
	data       BYTEA    NOT NULL
);
