"""How the runner groups a file's statements into transactions."""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.migrations.runner import segments
from ansible_collections.switchyard.release.plugins.module_utils.migrations.statements import split

NOT_NULL_RECIPE = """
ALTER TABLE orders ADD CONSTRAINT orders_note_nn CHECK (note IS NOT NULL) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_note_nn;
ALTER TABLE orders ALTER COLUMN note SET NOT NULL;
ALTER TABLE orders DROP CONSTRAINT orders_note_nn;
"""


def shape(groups):
    return [(transactional, [s.line for s in group]) for transactional, group in groups]


def test_validate_never_shares_the_transaction_of_the_add_constraint() -> None:
    """In one transaction, the ACCESS EXCLUSIVE lock of ADD CONSTRAINT would last the whole scan."""
    groups = segments(split(NOT_NULL_RECIPE), per_statement=False)
    assert shape(groups) == [(True, [2]), (True, [3]), (True, [4, 5])]


def test_concurrent_statements_run_alone_and_the_rest_together() -> None:
    text = (
        "ALTER TABLE items ADD COLUMN note text;\n"
        "ALTER TABLE items ADD COLUMN tag text;\n"
        "CREATE INDEX CONCURRENTLY items_tag_idx ON items (tag);\n"
        "COMMENT ON COLUMN items.tag IS 'x';\n"
    )
    assert shape(segments(split(text), per_statement=False)) == [(True, [1, 2]), (False, [3]), (True, [4])]
    assert shape(segments(split(text), per_statement=True)) == [(True, [1]), (True, [2]), (False, [3]), (True, [4])]
