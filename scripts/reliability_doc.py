"""Writes docs/RELIABILITY.md from the fault table the reliability tests assert.

    .venv/bin/python scripts/reliability_doc.py          # (re)write the doc
    .venv/bin/python scripts/reliability_doc.py --check  # exit 1 if the doc is out of date
"""

import argparse
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "RELIABILITY.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, do not write")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from tests.reliability.faults import render

    text = render()
    if args.check:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is out of date: run scripts/reliability_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
