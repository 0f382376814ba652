"""scripts/compare_verdicts.py: two results pages' verdicts side by side."""

import pytest

from tests.conftest import load_script

compare = load_script("compare_verdicts")

PAGE_A = """# Results
- Claim 1: Scaled QL beats BC: **reproduced** (lower CI end 0.095 > 0.083; 0.114 vs 0.064)
- Claim 2 (improves with size): **reproduced**: S 0.080, M 0.114, L 0.155
text that is not a verdict: **reproduced**
- Claim 1: Scaled QL beats BC: **not reproduced** (a later section repeats the claim)
"""
PAGE_B = """- Claim 2 (improves with size): **not reproduced** (L 0.068 <= S 0.086): S 0.037
- Claim 3b: pre-trained beats from scratch: **not measured** (runs missing)
"""


def test_reads_each_claims_first_verdict_and_its_numbers():
    assert compare.verdicts(PAGE_A) == {
        "Claim 1: Scaled QL beats BC": ("reproduced",
                                        "lower CI end 0.095 > 0.083; 0.114 vs 0.064"),
        "Claim 2 (improves with size)": ("reproduced", "S 0.080, M 0.114, L 0.155")}


def test_table_rows_in_the_first_pages_order_then_the_others_claims():
    table = compare.table([compare.verdicts(PAGE_A), compare.verdicts(PAGE_B)], ["A", "B"])
    lines = table.splitlines()
    assert lines[0] == "| claim | A | B | same verdict |"
    assert lines[2] == ("| Claim 1: Scaled QL beats BC | **reproduced** lower CI end 0.095 > "
                        "0.083; 0.114 vs 0.064 | - | - |")
    assert lines[3].startswith("| Claim 2 (improves with size) | **reproduced** S 0.080")
    assert lines[3].endswith(
        "| **not reproduced** (L 0.068 <= S 0.086): S 0.037 | no |")
    assert lines[4] == ("| Claim 3b: pre-trained beats from scratch | - | **not measured** runs "
                        "missing | - |")
    assert len(lines) == 5


def test_bad_input_names_the_file(tmp_path, capsys):
    empty = tmp_path / "empty.md"
    empty.write_text("# no verdicts here\n")
    with pytest.raises(SystemExit) as exit_info:
        compare.main([str(empty)])
    assert exit_info.value.code == 2
    assert f"{empty}: no verdict lines" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare.main([str(empty), str(empty), "--names", "only one"])
    assert "--names: 1 names for 2 pages" in capsys.readouterr().err
