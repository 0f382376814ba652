"""`scaled-ql games`: print the game catalogue (a table, or JSON with `--json`).

Reads only `scaled_ql.environments.games` (plain data): no ROM is loaded, no game created.
`--suite atari` (the default, the output of earlier releases), `--suite minatar`, or
`--suite all` (both sections; JSON `{"atari": [...], "minatar": [...]}`).
"""

import argparse
import json
import math

from scaled_ql.cli.common import command

SUITE_CHOICES = ("atari", "minatar", "all")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "games",
        help="list the games: the 46 rlu_atari games (ROM ids, actions, scores, pools, "
        "variants) and, with --suite, the 5 MinAtar games",
        description=(
            "The game catalogue. ALE (--suite atari, the default): the 46 rlu_atari games with "
            "their ALE ROM ids, minimal action counts, Atari-57 random and human scores (none "
            "for Carnival and Pooyan), pool (41 MGDT training games, 5 held out), and ALE "
            "modes and difficulties. MinAtar (--suite minatar): the 5 MinAtar games "
            "('minatar/<Game>') with minimal action counts, object channels (padded to 10 in "
            "observations), measured random scores, the DQN reference scores of their "
            "normalized score, pool, and difficulties (1 = difficulty ramping). --suite all "
            "prints both."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--suite",
        choices=SUITE_CHOICES,
        default="atari",
        help="which games: atari, minatar, or all (both sections)",
    )
    parser.add_argument(
        "--pool",
        choices=("all", "train", "held_out"),
        default="all",
        help="only the games of this pool",
    )
    command(parser, run)


def _names(suite: str, pool: str) -> list:
    from scaled_ql.environments import games

    names = games.ALL_GAMES if suite == games.ATARI_SUITE else games.MINATAR_GAMES
    infos = [games.get_game(name) for name in names]
    return [info for info in infos if pool == "all" or info.pool == pool]


def catalogue_records(pool: str = "all") -> list[dict]:
    """The ALE catalogue as JSON-ready dicts; a missing score is None (JSON null), never NaN."""
    return [
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
        for info in _names("atari", pool)
    ]


def minatar_records(pool: str = "all") -> list[dict]:
    """The MinAtar catalogue as JSON-ready dicts (`reference_score`: the DQN score that a
    normalized score of 1 stands for, `games.MINATAR_SCORE_CONVENTION`)."""
    from scaled_ql.environments import suites

    return [
        {
            "name": info.name,
            "minatar_name": info.rom_id,
            "num_actions": info.num_actions,
            "num_channels": info.num_channels,
            "random_score": info.random_score,
            "reference_score": info.reference_score,
            "score_name": suites.MINATAR.score_name,
            "pool": info.pool,
            "difficulties": list(info.difficulties),
            "ramping": 1 in info.difficulties,
        }
        for info in _names("minatar", pool)
    ]


def _format_ints(values: list[int]) -> str:
    """1,2,3,5 -> "1-3,5": keeps DoubleDunk's 16 modes readable."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


def _format_score(value: float | None, decimals: int = 1) -> str:
    return "-" if value is None else f"{value:,.{decimals}f}"


def _table(header: tuple, rows: list[tuple], numeric: set[int], footer: str) -> str:
    """Fixed-width columns, numbers (columns in `numeric`) right-aligned, then `footer`."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows),
                      footer])


def format_table(records: list[dict], minatar_hint: bool = False) -> str:
    """A fixed-width text table of `catalogue_records` output; `minatar_hint` adds where the
    MinAtar games are to the footer."""
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
    return _table(header, rows, {2, 3, 4}, (
        f"{len(rows)} games.  Scores: Atari-57 (random, human); '-' = no standard score "
        "(Carnival, Pooyan: excluded from human-normalized aggregates)."
        + ("  MinAtar games: --suite minatar (or all)." if minatar_hint else "")))


def format_minatar_table(records: list[dict]) -> str:
    """A fixed-width text table of `minatar_records` output."""
    header = ("game", "minatar id", "actions", "channels", "random", "DQN", "pool",
              "difficulties")
    rows = [
        (
            r["name"],
            r["minatar_name"],
            str(r["num_actions"]),
            str(r["num_channels"]),
            _format_score(r["random_score"], 3),
            _format_score(r["reference_score"]),
            r["pool"],
            _format_ints(r["difficulties"]),
        )
        for r in records
    ]
    return _table(header, rows, {2, 3, 4, 5}, (
        f"{len(rows)} MinAtar game{'' if len(rows) == 1 else 's'}; observations [10, 10, 10] "
        "(channels zero-padded to 10); difficulty 1 = difficulty ramping.  Scores: random = "
        "uniform random agent (measured here), DQN = Young & Tian 2019; DQN-normalized score "
        "= (score - random) / (DQN - random)."))


def run(args: argparse.Namespace) -> int:
    suite = getattr(args, "suite", "atari")
    sections = {}
    if suite in ("atari", "all"):
        sections["atari"] = catalogue_records(args.pool)
    if suite in ("minatar", "all"):
        sections["minatar"] = minatar_records(args.pool)
    if args.json:
        document = sections if suite == "all" else sections[suite]
        print(json.dumps(document, indent=2, allow_nan=False))
        return 0
    tables = []
    if "atari" in sections:
        tables.append(format_table(sections["atari"], minatar_hint=suite == "atari"))
    if "minatar" in sections:
        tables.append(format_minatar_table(sections["minatar"]))
    print("\n\n".join(tables))
    return 0
