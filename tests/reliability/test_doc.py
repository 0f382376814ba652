"""docs/RELIABILITY.md is the fault table the tests assert, and every row has its test."""

import ast

from tests.reliability import faults
from tests.reliability.harness import REPO


def test_the_doc_is_rendered_from_the_table():
    doc = REPO / "docs" / "RELIABILITY.md"
    assert doc.read_text() == faults.render(), (
        "docs/RELIABILITY.md differs from tests/reliability/faults.py: run "
        "`.venv/bin/python scripts/reliability_doc.py`")


def test_every_row_is_asserted_by_the_test_it_names():
    calls, strings = {}, {}
    for row in faults.ROWS:
        if row.test not in strings:
            tree = ast.parse((REPO / row.test).read_text())
            strings[row.test] = {node.value for node in ast.walk(tree)
                                 if isinstance(node, ast.Constant) and isinstance(node.value, str)}
            calls[row.test] = {node.func.attr for node in ast.walk(tree)
                               if isinstance(node, ast.Call)
                               and isinstance(node.func, ast.Attribute)
                               and isinstance(node.func.value, ast.Name)
                               and node.func.value.id == "faults"}
        assert row.id in strings[row.test], f"{row.test} never names row {row.id!r}"
        needed = "check" if row.message else "expect"
        assert needed in calls[row.test] or "check" in calls[row.test], (
            f"{row.test} has no faults.{needed}(...) call")
