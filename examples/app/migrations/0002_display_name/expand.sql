-- 0002 expand: add display_name next to name. Nullable and without a default, so PostgreSQL
-- only changes the catalog (no table rewrite, the ACCESS EXCLUSIVE lock lasts milliseconds),
-- and v1, which only knows `name`, keeps inserting as before.
ALTER TABLE items ADD COLUMN display_name text;
