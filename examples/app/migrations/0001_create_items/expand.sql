-- 0001 expand: the items table that v1 reads and writes.
CREATE TABLE items (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz DEFAULT now()
);
