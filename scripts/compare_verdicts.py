"""Side by side: the verdicts of two `docs/RESULTS.md` pages (two machines, or two dates).

    .venv/bin/python scripts/compare_verdicts.py docs/RESULTS.md /tmp/study_docs/RESULTS.md \
        --names "VM A" "VM B"

Prints a markdown table with one row per verdict line (`- Claim ...: **reproduced** (...)`)
found in either page, in the first page's order: the verdict and the numbers of each, and
whether the two agree.  A claim that one page does not have shows as "-".
"""

import argparse
import pathlib
import re
import sys

VERDICT = re.compile(r"^- (?P<claim>.+?): \*\*(?P<verdict>not reproduced|reproduced|not measured)"
                     r"\*\*:? ?(?P<numbers>.*)$")


def verdicts(text: str) -> dict[str, tuple[str, str]]:
    """Claim -> (verdict, the numbers after it), for every verdict line of a results page
    (the first line of each claim: the page repeats its verdicts under each claim's section)."""
    found: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        match = VERDICT.match(line)
        if match:
            numbers = re.sub(r"^\((.*)\)$", r"\1", match["numbers"].strip())
            found.setdefault(match["claim"], (match["verdict"], numbers))
    return found


def table(pages: list[dict[str, tuple[str, str]]], names: list[str]) -> str:
    claims = list(pages[0]) + [c for page in pages[1:] for c in page if c not in pages[0]]
    lines = [f"| claim | {' | '.join(names)} | same verdict |",
             "|---" * (len(names) + 2) + "|"]
    for claim in claims:
        cells = [page.get(claim) for page in pages]
        shown = [f"**{c[0]}** {c[1]}".strip() if c else "-" for c in cells]
        same = ("-" if None in cells else
                "yes" if len({c[0] for c in cells}) == 1 else "no")
        lines.append(f"| {claim} | {' | '.join(shown)} | {same} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=pathlib.Path, help="RESULTS.md files")
    parser.add_argument("--names", nargs="+", help="a column name per page (default: paths)")
    args = parser.parse_args(argv)
    names = args.names or [str(p) for p in args.pages]
    if len(names) != len(args.pages):
        parser.error(f"--names: {len(names)} names for {len(args.pages)} pages")
    pages = []
    for path in args.pages:
        if not path.is_file():
            parser.error(f"no such file: {path}")
        pages.append(verdicts(path.read_text()))
        if not pages[-1]:
            parser.error(f"{path}: no verdict lines ('- Claim ...: **reproduced** ...')")
    print(table(pages, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
