-- 0002 contract: display_name becomes NOT NULL and `name` goes away.
--
-- When: after the backfill, and once no v1 is left (v1 inserts rows without display_name, which
-- step 1 rejects at once). v2 is still live while this runs: it writes both columns, so steps 1-3
-- accept its inserts; it stops using `name` when step 4 drops it (on "undefined column" it re-reads
-- the schema and retries without `name`). That is why the DROP comes last: `name` is only
-- removed once display_name is guaranteed for every row, old and new.
--
-- Run the statements one by one, each in its own transaction: inside a single transaction the
-- ACCESS EXCLUSIVE lock taken by step 1 would be held during the full-table scan of step 2.
-- switchyard:transaction per-statement

-- 1. A CHECK that is NOT VALID: catalog only, checks new and updated rows from now on, no scan.
ALTER TABLE items ADD CONSTRAINT items_display_name_not_null CHECK (display_name IS NOT NULL) NOT VALID;

-- 2. Validate the existing rows: a scan under SHARE UPDATE EXCLUSIVE, reads and writes go on.
ALTER TABLE items VALIDATE CONSTRAINT items_display_name_not_null;

-- 3. SET NOT NULL uses the validated CHECK as proof (PostgreSQL 12+), so no second scan under
--    ACCESS EXCLUSIVE; then the CHECK is redundant.
ALTER TABLE items ALTER COLUMN display_name SET NOT NULL;
ALTER TABLE items DROP CONSTRAINT items_display_name_not_null;

-- 4. Drop the old column: catalog only (the data stays in the pages until rows are rewritten).
ALTER TABLE items DROP COLUMN name;
