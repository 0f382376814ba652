"""Where datasets of the `rlu_atari` schema live in a TFDS data_dir: dataset names, versions,
config names and splits (`scaled_ql.datasets.rlds` has the schema and the writer).

Layout on disk: a TFDS data_dir, `DATA_DIR/rlu_atari/{Game}_run_{k}/1.3.0/` (one `train` split)
or `DATA_DIR/rlu_atari_checkpoints_ordered/{Game}_run_{k}/1.1.0/` (one `checkpoint_NN` split per
checkpoint), so `tfds.builder("rlu_atari/Pong_run_1", data_dir=DATA_DIR)` reads a locally written
dataset exactly as it would read the real one.  The writer fills a sibling folder named
`incomplete.<version>.<pid>` and renames it to `<version>` only when closed, so a write that is
interrupted never looks complete.

MinAtar games ("minatar/Breakout") live under their suite's own dataset names,
`DATA_DIR/rlu_minatar/Breakout_run_{k}/1.0.0/` and
`DATA_DIR/rlu_minatar_checkpoints_ordered/Breakout_run_{k}/1.0.0/` (`LAYOUTS`), read with
`tfds.builder("rlu_minatar/Breakout_run_1", data_dir=DATA_DIR)` (TFDS has no code for these
names and reads the folder as it reads any prepared dataset).  A layout argument names the
kind of layout: the `rlu_atari` names also mean "plain" / "checkpoint-ordered" for the games of
other suites (`resolve_layout`), so one `--layout` works for every game.  A dataset's suite is
its dataset name, and the writer also records it in `scaled_ql_provenance.json`.
"""

import dataclasses
import os
import pathlib

RLU_ATARI = "rlu_atari"
RLU_ATARI_ORDERED = "rlu_atari_checkpoints_ordered"
RLU_MINATAR = "rlu_minatar"
RLU_MINATAR_ORDERED = "rlu_minatar_checkpoints_ordered"
# Readers accept AUTO: the plain layout of a game/run when present, else the checkpoint-ordered
# one (what `scaled-ql collect --policy online_c51` usually writes).
AUTO_LAYOUT = "auto"
INCOMPLETE_PREFIX = "incomplete."
PROVENANCE_FILE = "scaled_ql_provenance.json"


@dataclasses.dataclass(frozen=True)
class Layout:
    """One TFDS dataset name under which datasets of the schema are stored.

    Attributes:
      name: the TFDS dataset name, the first folder below the data_dir ("rlu_minatar").
      version: the dataset version, the folder below `<name>/<Game>_run_<k>/`.
      suite: the game suite whose games it holds ("atari", "minatar").
      ordered: one split per checkpoint (`checkpoint_NN`) instead of one `train` split.
      registered: TFDS 4.9.0 has builder code for the name (the real `rlu_atari` datasets).
    """

    name: str
    version: str
    suite: str
    ordered: bool
    registered: bool = False


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(RLU_ATARI, "1.3.0", "atari", ordered=False, registered=True),
        Layout(RLU_ATARI_ORDERED, "1.1.0", "atari", ordered=True, registered=True),
        Layout(RLU_MINATAR, "1.0.0", "minatar", ordered=False),
        Layout(RLU_MINATAR_ORDERED, "1.0.0", "minatar", ordered=True),
    )
}
LAYOUT_VERSIONS = {name: layout.version for name, layout in LAYOUTS.items()}


def _game_info(game: str):
    from scaled_ql.environments.games import get_game

    return get_game(game)  # ValueError with suggestions on unknown names


def resolve_layout(layout: str, game: str) -> Layout:
    """The layout that holds `game`'s datasets when `layout` is asked for.

    `layout` is one of `LAYOUTS`.  The `rlu_atari` names stand for their kind (plain or
    checkpoint-ordered) in every suite: `rlu_atari` for "minatar/Breakout" is `rlu_minatar`.
    A layout of another suite's own name is an error (it would never hold `game`).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
    info = _game_info(game)
    asked = LAYOUTS[layout]
    if asked.suite == info.suite:
        return asked
    if asked.suite != "atari":
        raise ValueError(
            f"{info.name} is a game of the {info.suite} suite; layout {layout!r} holds "
            f"{asked.suite} games only (use {RLU_ATARI!r} or {RLU_ATARI_ORDERED!r}, which mean "
            "the plain and checkpoint-ordered layouts of every suite)"
        )
    return next(
        candidate
        for candidate in LAYOUTS.values()
        if candidate.suite == info.suite and candidate.ordered == asked.ordered
    )


def config_name(game: str, run: int) -> str:
    """The TFDS builder config name of one game and run, e.g. `Pong_run_1`; a MinAtar game's
    config drops the suite prefix (`minatar/Breakout` -> `Breakout_run_1`)."""
    return f"{_game_info(game).name.rpartition('/')[2]}_run_{run}"


def parse_config_name(layout: str, config: str) -> tuple[str, int] | None:
    """(game, run) of a config folder `config` of `layout` (its suite's game name), or None
    when `config` is not `<Game>_run_<k>` of a known game of that layout's suite."""
    game, sep, run = config.rpartition("_run_")
    if layout not in LAYOUTS or not sep or not run.isdigit() or int(run) < 1:
        return None
    suite = LAYOUTS[layout].suite
    try:
        info = _game_info(game if suite == "atari" else f"{suite}/{game}")
    except ValueError:
        return None
    return (info.name, int(run)) if info.suite == suite else None


def checkpoint_split(checkpoint_id: int) -> str:
    """The `rlu_atari_checkpoints_ordered` split holding one checkpoint, e.g. `checkpoint_03`."""
    return f"checkpoint_{checkpoint_id:02d}"


def dataset_dir(data_dir: str | os.PathLike, game: str, run: int, layout: str = RLU_ATARI):
    """Where TFDS looks for one game/run of `layout` (resolved for the game's suite,
    `resolve_layout`) inside `data_dir` (a `pathlib.Path`)."""
    resolved = resolve_layout(layout, game)
    return pathlib.Path(data_dir) / resolved.name / config_name(game, run) / resolved.version
