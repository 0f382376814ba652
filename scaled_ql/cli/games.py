"""`scaled-ql games`: print the game catalogue (a table, or JSON with `--json`).

Reads only `scaled_ql.environments.games` (plain data): no ROM is loaded.
"""

import argparse
import json
import math


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "games",
        help="list the 46 rlu_atari games: ROM ids, action counts, scores, pools, variants",
        description=(
            "The game catalogue: the 46 rlu_atari games with their ALE ROM ids, minimal "
            "action counts, Atari-57 random and human scores (none for Carnival and Pooyan), "
            "pool (41 MGDT training games, 5 held out), and ALE modes and difficulties."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--pool",
        choices=("all", "train", "held_out"),
        default="all",
        help="only the games of this pool (default: all)",
    )
    parser.set_defaults(func=run)


def catalogue_records(pool: str = "all") -> list[dict]:
    """The catalogue as JSON-ready dicts; a missing score is None (JSON null), never NaN."""
    from scaled_ql.environments import games

    records = []
    for name in games.ALL_GAMES:
        info = games.get_game(name)
        if pool != "all" and info.pool != pool:
            continue
        records.append(
            {
                "name": info.name,
                "rom_id": info.rom_id,
                "num_actions": info.num_actions,
                "random_score": None if math.isnan(info.random_score) else info.random_score,
                "human_score": info.human_score,
                "pool": info.pool,
                "modes": list(info.modes),
                "difficulties": list(info.difficulties),
            }
        )
    return records


def _format_ints(values: list[int]) -> str:
    """1,2,3,5 -> "1-3,5": keeps DoubleDunk's 16 modes readable."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


def _format_score(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def format_table(records: list[dict]) -> str:
    """A fixed-width text table of `catalogue_records` output."""
    header = ("game", "rom id", "actions", "random", "human", "pool", "modes", "difficulties")
    rows = [
        (
            r["name"],
            r["rom_id"],
            str(r["num_actions"]),
            _format_score(r["random_score"]),
            _format_score(r["human_score"]),
            r["pool"],
            _format_ints(r["modes"]),
            _format_ints(r["difficulties"]),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3, 4}  # Right-align the numbers.

    def line(row):
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        ]
        return "  ".join(cells).rstrip()

    lines = [line(header), line(tuple("-" * w for w in widths)), *map(line, rows)]
    lines.append(
        f"{len(rows)} games.  Scores: Atari-57 (random, human); '-' = no standard score "
        "(Carnival, Pooyan: excluded from human-normalized aggregates)."
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    records = catalogue_records(args.pool)
    if args.json:
        print(json.dumps(records, indent=2, allow_nan=False))
    else:
        print(format_table(records))
    return 0
