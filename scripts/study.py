"""The paper's three claims at MinAtar scale, end to end: data, runs, reports, docs/RESULTS.md.

    .venv/bin/python scripts/study.py                  # `make study`: the design, resumable
    .venv/bin/python scripts/study.py --experiments all  # `make study-all`: every experiment
    .venv/bin/python scripts/study.py --stage report   # reports + docs/RESULTS.md from the runs
    .venv/bin/python scripts/study.py --dry-run        # what would run, and what is done

Stages (each skips what its output already holds, so an interrupted study resumes per run):

1. data     `scaled-ql collect --policy online_c51` on the five MinAtar games: one online C51
            agent per game learns for --env-steps steps while every step is logged as RLDS
            with checkpoint_id = the tenth of training it came from (DQN-Replay-like), --jobs
            games at a time, each logging to OUT/collect_<game>.log.  A game whose dataset
            folder is complete is skipped; each game keeps the seed the five-game command
            gives it.
2. train    the runs of issue 17 as `scaled-ql` subprocesses, --jobs at a time, each in
            OUT/runs/<kind>/<config>/seed<k>/ with its log (study.log) and command
            (study_job.json); every attempt's wall time goes to OUT/jobs.jsonl.  A run is
            skipped when its eval_results.json reached its final step and its summary is
            written; a run with checkpoints but short of its steps resumes (--resume); a run
            whose command changed in anything but its step budget or evaluation settings
            starts over.  By default (`--experiments design`) only the issue's design: the
            first five experiments below with --seeds seeds each and without the near-optimal
            split's longer variant (55 runs at the defaults); `--experiments all` runs every
            run of every experiment (361), and a comma-separated list all runs of those;
            --label keeps only the runs whose label contains a text.  A selected run's
            start (the pre-trained run it fine-tunes) runs first when it is not done.
              claim1              Scaled QL (C51 + CQL), C51 (CQL 0), BC: same network, the
                                  sub-optimal split (checkpoint ids 0-1) of the four games;
                                  Scaled QL and BC with --claim1-seeds (10), C51 with --seeds
              claim1_near_optimal Scaled QL on all checkpoint ids; the same with twice the
                                  steps
              claim2              Scaled QL at sizes S and L (M is claim 1's network)
              claim3a             offline fine-tuning to the held-out minatar/Freeway
                                  from claim 1's Scaled QL seed 0: pre-trained, from
                                  scratch, frozen torso
              claim3b             online fine-tuning on a training game with difficulty
                                  ramping: pre-trained, from scratch
              claim1_tried        what was tried when claim 1 did not reproduce at the first
                                  pass's 6,000 SGD steps: Scaled QL M with CQL 0.1, CQL 2;
                                  Scaled QL M and BC M at half the steps (--tried-seeds)
              claim3a_tried       what was tried when claim 3a did not reproduce: one
                                  setting of the fine-tuning changed at a time (a smaller
                                  dataset, a lower learning rate, more steps, the CQL 0.1
                                  pre-training run), --tried-seeds each; how the copied
                                  torso trains; the random-features control (the head on
                                  a random, frozen torso)
              claim2_cql_0_1      claim 2 again at PAPER.md's CQL weight 0.1 (the weight
                                  with which claim 1 beat BC): sizes S and L (M is claim
                                  1's CQL 0.1 variant)
              claim3b_cql_0_1     claim 3b from the CQL 0.1 run: pre-trained (from
                                  scratch is claim 3b's own, which reads no weights)
              claim3a_second_game claim 3a with minatar/SpaceInvaders held out instead: Scaled
                                  QL M at CQL 0.1 pre-trained on the other four games, then
                                  fine-tuned offline to it (pre-trained, from scratch, frozen
                                  torso, frozen random torso)
              claim3a_seen_game   claim 3a's positive control: Scaled QL M at CQL 0.1
                                  pre-trained on all five games, then fine-tuned offline to
                                  Freeway and to SpaceInvaders with a fresh head
                                  (pre-trained, frozen torso), against those games' from
                                  scratch and frozen random torso
              claim3a_third_game  claim 3a with minatar/Breakout held out, as the second
              claim3a_size_l      claim 3a with minatar/Breakout held out at claim 2's size
                                  L: pre-trained and from scratch, --claim1-seeds each
              claim3a_small_data  claim 3a with minatar/Breakout held out, fine-tuned on 1%
                                  of its episodes: pre-trained and from scratch (size M),
                                  --claim1-seeds each
              claim3a_fourth_game claim 3a with minatar/Asterix held out, as the second;
                                  pre-trained and from scratch --claim1-seeds each
3. final    claim 3's final reading: `scaled-ql evaluate` plays each done fine-tuning run's
            final checkpoint for --final-episodes episodes (100; the rounds' cap, the run's
            seed; an online run its variant) into RUN/final_eval.json, --jobs at a time; a run
            whose file reads its last evaluated step with those settings is skipped.  The
            rounds' 10 episodes left claim 3b's verdict turning on which round was read.
4. pixels   scripts/study_pixels.py (offline Scaled QL from 84x84x4 ALE frames; its own
            document, docs/PIXELS.md), skipped once OUT/pixels/summary.md exists.
5. report   `scaled-ql report` per experiment into docs/results/ (the final reading into
            docs/results/<experiment>/final/), and docs/RESULTS.md: every number from the run
            directories; runs still missing are listed.
"""

import argparse
import concurrent.futures
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time

from scaled_ql.cli.pretrain import _range  # FIRST-LAST checkpoint ids, as the CLI parses them

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLI = (sys.executable, "-m", "scaled_ql.cli")
# The collection order of the study (and of the lead's first collection): each game's seed is
# 7919 * its index here, as `scaled-ql collect --games <all five>` gives it.
STUDY_GAMES = ("minatar/Breakout", "minatar/SpaceInvaders", "minatar/Freeway",
               "minatar/Asterix", "minatar/Seaquest")
HELD_OUT_GAME = "minatar/Freeway"
PRETRAIN_GAMES = tuple(g for g in STUDY_GAMES if g != HELD_OUT_GAME)
COLLECT_LAYOUT = "rlu_atari_checkpoints_ordered"  # stored as rlu_minatar_checkpoints_ordered
COLLECT_SEED_STRIDE = 7919  # scaled-ql collect: seed + 7919 * (index of the game in --games)
SUBOPTIMAL = (0, 1)  # checkpoint ids: the first 20% of each logged agent's training
NEAR_OPTIMAL = (0, 9)  # all of it
FEATURE_NORM_OFF_BECAUSE = ("off (unit-norm features into linear heads keep the C51 logits "
                            "near uniform for thousands of steps at this scale; docs/DEMO.md)")
EXPERIMENTS = ("claim1", "claim1_near_optimal", "claim2", "claim3a", "claim3b", "claim1_tried",
               "claim3a_tried", "claim2_cql_0_1", "claim3b_cql_0_1", "claim3a_second_game",
               "claim3a_seen_game", "claim3a_third_game", "claim3a_size_l", "claim3a_small_data",
               "claim3a_fourth_game")
# `make study` runs the issue's design (DESIGN: these experiments' runs for which `is_core`
# holds), `make study-all` every experiment (ALL).
DESIGN_EXPERIMENTS = EXPERIMENTS[:5]
DESIGN, ALL = "design", "all"
# Claim 1 did not reproduce against the data and BC in a first pass of 6,000 SGD steps; twice
# the steps did (2 seeds), and became the study's --steps.  What was tried, as variants of claim
# 1's runs (label, method, CQL weight or None for --cql-alpha, a multiple of --steps or None):
# the CQL weight, and the first pass's step budget (half of --steps) for Scaled QL and for BC,
# its fair comparison.  docs/DEMO.md has the earlier single-seed tries (learning rate, target
# period, feature norm).
TRIED = (("Scaled QL M, CQL 0.1", "scaled_ql", 0.1, None),
         ("Scaled QL M, CQL 2", "scaled_ql", 2.0, None),
         ("Scaled QL M, half the steps", "scaled_ql", None, 0.5),
         ("BC M, half the steps", "bc", None, 0.5))
# The variant whose 2 seeds beat BC's interval (CQL 0.1: also PAPER.md's default weight) runs
# with claim 1's seeds, to see whether that holds; the others keep --tried-seeds.
TRIED_WITH_ALL_SEEDS = ("Scaled QL M, CQL 0.1",)
# With 5 seeds Scaled QL's and BC's intervals overlapped (the comparison undecided, not lost):
# Scaled QL M, BC M and the variants in TRIED_WITH_ALL_SEEDS run --claim1-seeds (default 10).
# C51 M, the near-optimal split, the other sizes and the fine-tuning experiments keep --seeds.
# Claim 1 on the near-optimal split did not reproduce at --steps while Scaled QL's Breakout and
# SpaceInvaders returns were still rising: the same runs with a multiple of the steps, in the
# near-optimal experiment.  (label, multiple of --steps)  Its 2 seeds (--tried-seeds) cleared
# the data, so, as the CQL 0.1 variant of claim 1, it runs with the experiment's seeds.
NEAR_OPTIMAL_TRIED = (("Scaled QL M near-optimal, twice the steps", 2.0),)
# Claim 3a's starts of fine-tuning: (name, finetune-offline flags).
FINETUNE_STARTS = (("pre-trained", ()), ("from scratch", ("--from-scratch",)),
                   ("frozen torso", ("--freeze-torso",)))
# Claim 3a did not reproduce at --finetune-steps on --finetune-fraction of Freeway's episodes
# (pre-trained and frozen torso inside from scratch's wide interval).  What was tried, declared
# before it ran, one setting changed at a time for every start, --tried-seeds each: (name,
# changes), the changes among "fraction" (--episode-fraction: the paper's case is a small
# dataset), "learning_rate" (gentler updates of the copied torso; from scratch gets it too),
# "steps" (a multiple of --finetune-steps, evaluated as often) and "base" (the claim-1 run
# fine-tuned from, a TRIED label: the CQL weight that beat BC), "frozen_torso" (the pre-trained
# start only: its head alone for this fraction of the steps, then the whole network, the torso
# with an Adam of its own: `--frozen-torso-steps`, LP-FT), "torso_lr" (the pre-trained start
# only: the torso's Adam step size is this fraction of the head's, `--torso-learning-rate-scale`,
# discriminative fine-tuning).  A variant that changes only the base or how the pre-trained
# torso trains compares with the study's own from-scratch runs, which do not read the base's
# weights and have no pre-trained torso to keep.
FINETUNE_TRIED = (("3% of the episodes", {"fraction": 0.03}),
                  ("Adam 3e-4", {"learning_rate": 3e-4}),
                  ("3x the steps", {"steps": 3}),
                  ("from CQL 0.1", {"base": "Scaled QL M, CQL 0.1"}),
                  ("from CQL 0.1, 3x the steps", {"base": "Scaled QL M, CQL 0.1", "steps": 3}),
                  ("head first for half the steps", {"frozen_torso": 0.5}),
                  ("head first for half of 3x the steps", {"frozen_torso": 0.5, "steps": 3}),
                  ("torso at a tenth of the step size", {"torso_lr": 0.1}),
                  ("torso at a tenth of the step size, 3x the steps",
                   {"torso_lr": 0.1, "steps": 3}))
# Changes that only the pre-trained start takes ("base": also the frozen torso).
PRETRAINED_ONLY_CHANGES = ("base", "frozen_torso", "torso_lr")
# Of them, those of how the copied torso trains: only the pre-trained start runs them.
TORSO_TRAINING_CHANGES = ("frozen_torso", "torso_lr")
# The rule, declared with them: a variant whose pre-trained or frozen-torso IQM estimate over
# its --tried-seeds is above its from-scratch estimate runs with --seeds, and its verdicts are
# also computed over only the seeds run after that choice (of both starts).  With 2 seeds every
# variant passed (from scratch / pre-trained / frozen torso: 3% of the episodes 0.205 / 0.127 /
# 0.229; Adam 3e-4 0.253 / 0.325 / 0.383; 3x the steps 0.259 / 0.361 / 0.451; from CQL 0.1
# 0.236 (the study's from scratch, seeds 0-1) / 0.344 / 0.330).
FINETUNE_TRIED_WITH_ALL_SEEDS = ("3% of the episodes", "Adam 3e-4", "3x the steps",
                                 "from CQL 0.1", "head first for half the steps",
                                 "torso at a tenth of the step size")
# The head first for half the steps passed it too (2026-11-28, the session-13 machine's runs:
# final Freeway returns 12.4 and 14.0, mean 13.2, against from scratch's 14.5 and 9.9, 12.2).
# The torso at a tenth of the step size passed it as well (2026-11-28, late morning, the same
# machine: final Freeway returns 14.8 and 21.6, normalized 0.290 and 0.426, mean 0.358, against
# from scratch's 0.284 and 0.191, mean 0.238).
# Then, declared before it ran, after the frozen torso cleared from scratch only with 3x the
# steps and claim 1 beat BC only at CQL 0.1: the two together (a combination chosen after seeing
# both, so not an independent test of either), with --seeds from the start (no screen, so no
# line over later seeds).  Its from scratch is 3x the steps' (from scratch reads no weights).
# Then, declared before they ran, after full fine-tuning had not beaten from scratch in any
# setting while the frozen torso had with 3x the steps: the head first for half of the steps,
# then the whole network (LP-FT, Kumar et al. 2022: a new head's first, large gradients can
# distort the copied features), at the study's steps (a single change, --tried-seeds first) and
# at 3x the steps (combined, --seeds from the start; its from scratch is 3x the steps').
# Then, declared before they ran (2026-11-28, late morning), after LP-FT had not beaten from
# scratch either and its curves fell once the torso trained (on 12 episodes, training the copied
# torso at all costs return, while the frozen torso keeps it): the torso trained at a tenth of the
# head's step size (discriminative fine-tuning, Howard & Ruder 2018: the copied features move,
# slowly), at the study's steps (a single change, --tried-seeds first) and at 3x the steps
# (combined, --seeds from the start; its from scratch is 3x the steps').
FINETUNE_TRIED_COMBINED = ("from CQL 0.1, 3x the steps", "head first for half of 3x the steps",
                           "torso at a tenth of the step size, 3x the steps")
# The random-features control, declared before it ran (2026-11-28, afternoon), after the frozen
# pre-trained torso had been the only start to clear from scratch (with 3x the steps, on one
# machine): the head on the same architecture's random torso, kept fixed (`--from-scratch
# --freeze-torso`), --seeds each, at the study's settings and at 3x the steps.  A frozen torso
# leaves a linear head on fixed features to train on 12 episodes; if the random one does as
# well, what beats from scratch is the freezing, not the pre-training.  Each frozen pre-trained
# torso is then compared with the random one of its own settings (`random_torso_setting`).
RANDOM_TORSO = ("frozen random torso", ("--from-scratch", "--freeze-torso"))
RANDOM_TORSO_SETTINGS = (None, "3x the steps")  # None: the study's own
# What a single variant's name does not say, for the page.
SINGLE_VARIANT_NOTES = {
    "from CQL 0.1": " (the claim-1 run `Scaled QL M, CQL 0.1`, which beat BC, as the pre-trained "
                    "network; from scratch reads none of its weights, so its comparison is the "
                    "study's from-scratch runs)",
    "head first for half the steps": " (the pre-trained start only, its torso frozen for the "
                                     "first half of the steps; compared with the study's "
                                     "from-scratch runs)",
    "torso at a tenth of the step size": " (the pre-trained start only, the torso's Adam step "
                                         "size a tenth of the head's; compared with the "
                                         "study's from-scratch runs)"}
# Why each combination was declared, for the page.
COMBINED_BECAUSE = {
    "from CQL 0.1, 3x the steps": "after the frozen torso cleared from scratch only with 3x the "
                                  "steps and claim 1 beat BC only at CQL 0.1",
    "head first for half of 3x the steps": "after full fine-tuning beat from scratch in no "
                                           "setting while the frozen torso did with 3x the "
                                           "steps (LP-FT)",
    "torso at a tenth of the step size, 3x the steps": "after LP-FT had not beaten from "
                                                       "scratch either (discriminative "
                                                       "fine-tuning)"}
# Claim 1 reproduced against BC only at PAPER.md's CQL weight 0.1 (a TRIED variant), so claims
# 2 and 3b are rerun from it as well (declared before they ran; --seeds each): the label of
# claim 1's CQL 0.1 run, the weight, and the suffix of the runs at it.  (Claim 3a's is the
# FINETUNE_TRIED variant "from CQL 0.1".)
PAPER_CQL_LABEL, PAPER_CQL, PAPER_CQL_SUFFIX = "Scaled QL M, CQL 0.1", 0.1, "CQL 0.1"
# With --seeds (5) both comparisons at that weight were undecided, not lost: claim 2's L's lower
# CI end tied S's upper (0.124 and 0.124), and claim 3b's intervals overlapped (0.025 [0.003,
# 0.040] vs 0.003 [-0.021, 0.019]).  As with claim 1's comparison with BC, every configuration
# in them then runs claim1_seeds (10; M at 0.1 already had them; claim 3b's from scratch gets
# seeds 5-9 here, claim 3b at --cql-alpha keeps its seeds 0-4), declared before they ran; the
# verdicts are also given over only the seeds run after that choice (5-9), on every side
# (paper_cql_seeds).
# Claim 3a on a second held-out game, declared before it ran (2026-11-28, afternoon), after the
# random-features control found Freeway's frozen-torso gain to be freezing, not transfer:
# MinAtar's held-out game of the catalogue (`pool == 'held_out'`), SpaceInvaders.  Scaled QL M
# at PAPER.md's CQL weight is pre-trained on the other four games' sub-optimal split (seed 0,
# the study's steps), then fine-tuned offline to SpaceInvaders as claim 3a is to Freeway
# (--finetune-steps on --finetune-fraction of the episodes of every checkpoint id): pre-trained,
# from scratch, frozen torso and the frozen random torso, --seeds each.
# Then on a third, declared before it ran (2026-11-28, evening), after the positive control
# below found the protocol able to show a torso's worth on SpaceInvaders: Breakout, the game
# most like SpaceInvaders (the player moves along the bottom row below what it must hit), held
# out the same way.  Then on a fourth, declared before it ran (2026-11-29, machine C), after
# Breakout at size L and on 1% of its episodes (FOLLOW_UPS below): Asterix, whose objects share
# the most meaning with the other games' (channel 1 its enemies, as Freeway's cars and
# SpaceInvaders' aliens; channel 2 its trail, as Breakout's), and whose logged agent learns
# throughout (mean return 0.5 at checkpoint id 0, 2.3-2.7 at ids 8-9), so that a small dataset
# of it may leave from scratch short.  Each experiment's held-out game, in the order they were
# declared:
OTHER_HELD_OUT = {"claim3a_second_game": "minatar/SpaceInvaders",
                  "claim3a_third_game": "minatar/Breakout",
                  "claim3a_fourth_game": "minatar/Asterix"}
OTHER_HELD_OUT_BECAUSE = {
    "claim3a_second_game": "after the random-features control above found {held}'s "
                           "frozen-torso gain to be freezing: {game}, the catalogue's held-out "
                           "MinAtar game",
    "claim3a_third_game": "after the positive control above found the protocol able to show a "
                          "torso's worth on SpaceInvaders once the torso had seen it: {game}, "
                          "the game most like SpaceInvaders (the player moves along the bottom "
                          "row below what it must hit)",
    "claim3a_fourth_game": "after Breakout at size L and on 1% of its episodes had not made the "
                           "transfer appear: {game}, whose objects share the most meaning with "
                           "the other games' (its enemies in channel 1, as Freeway's cars and "
                           "SpaceInvaders' aliens; its trail in channel 2, as Breakout's) and "
                           "whose logged agent learns throughout"}
SECOND_HELD_OUT = OTHER_HELD_OUT["claim3a_second_game"]
OTHER_STARTS = (*(name for name, _ in FINETUNE_STARTS), RANDOM_TORSO[0])
# On Breakout, with --seeds (5), pre-trained was ahead of from scratch by its estimate but the
# intervals overlapped (0.619 [0.537, 0.743] vs 0.500 [0.458, 0.578]): undecided, not lost.  As
# with claim 1's comparison with BC, both then run claim1_seeds (10), declared before seeds 5-9
# ran, and the verdict is also given over only those seeds (`other_game_later_verdict`).
OTHER_MORE_SEEDS = {"claim3a_third_game": ("pre-trained", "from scratch")}
# After that, a held-out game's pre-trained and from scratch run claim1_seeds from the start, as
# the FOLLOW_UPS do (its frozen torsos --seeds).
OTHER_SEEDS_FROM_START = {"claim3a_fourth_game": ("pre-trained", "from scratch")}


@dataclasses.dataclass(frozen=True)
class FollowUp:
    """A follow-up of claim 3a on the third held-out game (Breakout): its pre-trained and from
    scratch with one thing changed, both at `size`, claim1_seeds (10) each from the start, since
    size M's 5 had been undecided.  `fraction` (None: --finetune-fraction) is of the game's
    episodes; `title`, `claim` and `change` are formatted with the game, size, fraction and the
    size's width, blocks and shared layer (`ff`)."""
    experiment: str
    size: str
    variant: str  # in its runs' names
    title: str  # the page's section
    claim: str  # its verdict line
    because: str  # why it was declared
    change: str  # what it changes, for the page
    fraction: float | None = None
    game: str = OTHER_HELD_OUT["claim3a_third_game"]


# Then, declared before it ran (2026-11-28, night, on a third machine), after Breakout was the
# nearest claim 3a came and claim 2 had found the larger network better at CQL 0.1: the same
# test with claim 2's size L.
LARGER = FollowUp(
    "claim3a_size_l", "L", "size L", title="at size {size} on {game}",
    claim="Claim 3a on {name} at size {size}",
    because="after {game} was the nearest claim 3a came, pre-trained ahead of from scratch "
            "without clearing its interval, and claim 2 had found the larger network better at "
            "CQL 0.1",
    change="at claim 2's size {size} (width {width:g}, {blocks} blocks, shared layer {ff})")
# Then, declared before it ran (2026-11-28, late night, machine C), after size L had not made the
# transfer appear either (from scratch, with about 670 episodes at 10%, caught up with the
# pre-trained network, which led early on): size M on a tenth of the fine-tuning set, 1% of
# Breakout's episodes of every checkpoint id (63 on machine C's data), the small-data case the
# paper's claim is about, where from scratch has the least to learn from.
SMALLER = FollowUp(
    "claim3a_small_data", "M", "1% of the episodes", title="on {fraction:.0%} of {game}'s episodes",
    claim="Claim 3a on {name} on {fraction:.0%} of its episodes",
    because="after size L had not made the transfer appear on {game} either, from scratch "
            "catching up with the pre-trained network, which led early on",
    change="on a tenth of the fine-tuning set, the small-data case of the paper's claim",
    fraction=0.01)
FOLLOW_UPS = (LARGER, SMALLER)
FOLLOW_UP_STARTS = ("pre-trained", "from scratch")


def follow_up_fraction(args, follow: FollowUp) -> float:
    """The fraction of the game's episodes that `follow` fine-tunes on."""
    return args.finetune_fraction if follow.fraction is None else follow.fraction


def follow_up_text(args, follow: FollowUp, text: str) -> str:
    """`text` (a FollowUp field) formatted with its game, size, fraction and network shape."""
    width, blocks, ff = sizes(args)[follow.size]
    return text.format(game=follow.game, name=follow.game.split("/")[-1], size=follow.size,
                       fraction=follow_up_fraction(args, follow), width=width, blocks=blocks,
                       ff=ff)


def held_out_base(game: str, size: str = "M") -> str:
    """The label of the CQL 0.1 pre-training run of `size` without `game` (experiments
    OTHER_HELD_OUT, and FOLLOW_UPS)."""
    return f"Scaled QL {size}, {PAPER_CQL_SUFFIX}, {game.split('/')[-1]} held out"


def games_without(game: str) -> tuple[str, ...]:
    return tuple(g for g in STUDY_GAMES if g != game)


# Claim 3a's positive control, declared before it ran (2026-11-28, evening), after claim 3a
# failed on both held-out games and its frozen heads were found near constant policies: does
# this protocol (a fresh head, --finetune-steps on --finetune-fraction of the episodes) show a
# pre-trained torso's worth when the torso has seen the game?  Scaled QL M at PAPER.md's CQL
# weight is pre-trained on all five games' sub-optimal split (seed 0, the study's steps), then
# fine-tuned offline to each held-out game of claim 3a as there, but with a fresh head
# (`--fresh-head`: the game's own head is not copied, so only the torso differs from the
# held-out case): pre-trained and frozen torso, --seeds each, against the game's from scratch
# and frozen random torso runs (which read no weights).  If these do not beat them either,
# the protocol cannot show transfer at this scale; if they do, the held-out games' verdicts
# are about what MinAtar's other games teach.
SEEN_GAMES = (HELD_OUT_GAME, SECOND_HELD_OUT)
SEEN_BASE = f"{PAPER_CQL_LABEL}, all five games"
SEEN_VARIANT = "game seen in pre-training"
SEEN_STARTS = ("pre-trained", "frozen torso")
# Each game's held-out runs from a CQL 0.1 network, shown beside the control: the claim-3a
# variant (FINETUNE_TRIED; None: the game's own claim-3a runs) whose base held the game out.
SEEN_HELD_OUT_VARIANT = {HELD_OUT_GAME: "from CQL 0.1", SECOND_HELD_OUT: None}
# The final reading of claim 3 (stage `final`): each fine-tuning run's final checkpoint plays
# --final-episodes episodes with the rounds' settings, into FINAL_FILE in its run directory;
# so does claim 3a's random-torso control (`FINAL_CONTROL`, a run of claim3a_tried).
# Added after claim 3b's 10-episode verdicts turned on which round was read (docs/REPLICATION.md).
FINAL_FILE = "final_eval.json"
FINAL_EXPERIMENTS = ("claim3a", "claim3b", "claim3b_cql_0_1", *OTHER_HELD_OUT,
                     *(f.experiment for f in FOLLOW_UPS))
JOB_FILE = "study_job.json"
LOG_FILE = "study.log"
# Flags whose change does not make a run another run: `--resume` may extend the step budget
# and how often it evaluates, not the protocol (scaled_ql.runners.run_dir.RESUMABLE_CHANGES).
RESUMABLE_FLAGS = ("--steps", "--eval-every", "--checkpoint-every", "--eval-workers",
                   "--timeout")  # (--resume refuses another evaluation protocol)
SWITCHES_IGNORED = ("--no-progress", "--resume")
# One core per job: XLA, TF and BLAS thread pools of one process each (jobs run side by side).
JOB_ENV = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
           "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ONLINE_SAMPLES_PER_INSERT = 8  # finetune-online's default: a batch of 32 every 4 env steps


class CollectionInProgressError(RuntimeError):
    """Another `scaled-ql collect` is writing a dataset the data stage would write."""


# --- arguments -------------------------------------------------------------------------------

def _network(text: str) -> tuple[float, int, int]:
    """'WIDTH:BLOCKS:FEED_FORWARD' -> (width multiplier, residual blocks, shared layer)."""
    try:
        width, blocks, ff = text.split(":")
        return float(width), int(blocks), int(ff)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTH:BLOCKS:FEED_FORWARD, e.g. 0.5:1:64, got {text!r}") from None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "study_out"), help="data and run directories")
    parser.add_argument("--docs", default=str(ROOT / "docs"),
                        help="where RESULTS.md and results/ go (study_pixels: PIXELS.md)")
    parser.add_argument("--stage", default="all",
                        choices=("all", "data", "train", "final", "pixels", "report"))
    parser.add_argument("--experiments", default=DESIGN,
                        help=f"training stage: {DESIGN!r} (the issue's design: claims 1-3 with "
                             f"--seeds seeds, no variant tried), {ALL!r} (every experiment, "
                             "each with all its runs), or experiments (comma-separated)")
    parser.add_argument("--label", action="append", default=[], dest="labels",
                        help="training stage: only the runs of --experiments whose label "
                             "contains this, or is it exactly when given as '=LABEL' "
                             "(repeatable: any of them; e.g. 'head first' for one variant); "
                             "default: all of them")
    parser.add_argument("--jobs", type=int, default=2,
                        help="runs at a time (and games collected at a time)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print each run's state and command; run nothing")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per configuration")
    parser.add_argument("--tried-seeds", type=int, default=2,
                        help="seeds of each claim1_tried variant")
    parser.add_argument("--claim1-seeds", type=int, default=None,
                        help="seeds of Scaled QL M, BC M and Scaled QL M with CQL 0.1, claim 1's "
                             "comparison with BC (default: 10, or --seeds if larger)")
    parser.add_argument("--near-optimal-seeds", type=int, default=None,
                        help="seeds of Scaled QL on the near-optimal split (default: --seeds)")
    data = parser.add_argument_group("data")
    data.add_argument("--env-steps", type=int, default=300_000,
                      help="online C51 steps per game (the logged dataset's size)")
    train = parser.add_argument_group("pre-training (claims 1 and 2)")
    train.add_argument("--steps", type=int, default=12_000, help="SGD steps per run")
    train.add_argument("--evals", type=int, default=6,
                       help="evaluation rounds per run (learning curves)")
    train.add_argument("--width", type=float, default=0.5,
                       help="claim-1 network (= size M): minatar_resnet width multiplier")
    train.add_argument("--num-blocks", type=int, default=1, help="claim-1 network: blocks")
    train.add_argument("--feed-forward-size", type=int, default=256,
                       help="claim-1 network: shared layer")
    train.add_argument("--size-s", type=_network, default=(0.5, 1, 64),
                       help="claim 2's small network WIDTH:BLOCKS:FF (default 0.5:1:64)")
    train.add_argument("--size-l", type=_network, default=(1.0, 2, 1024),
                       help="claim 2's large network WIDTH:BLOCKS:FF (default 1:2:1024)")
    train.add_argument("--num-groups", type=int, default=8)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--feature-norm", action="store_true",
                       help="unit-L2 feature normalization (the recipe's; off by default at "
                            "this scale, as in make demo: see docs/RESULTS.md)")
    train.add_argument("--target-update-period", type=int, default=500)
    train.add_argument("--n-step", type=int, default=3)
    train.add_argument("--cql-alpha", type=float, default=0.5, help="Scaled QL's CQL weight")
    evaluation = parser.add_argument_group("evaluation (every run)")
    evaluation.add_argument("--eval-episodes", type=int, default=10, help="per game per round")
    evaluation.add_argument("--eval-max-frames", type=int, default=2_500,
                            help="episode cap (MinAtar steps)")
    evaluation.add_argument("--final-episodes", type=int, default=100,
                            help="claim 3's final reading (stage final): episodes each "
                                 "fine-tuning run's final policy plays (0: none)")
    finetune = parser.add_argument_group("fine-tuning (claim 3)")
    finetune.add_argument("--finetune-steps", type=int, default=2_000,
                          help="3a: SGD steps on the held-out game")
    finetune.add_argument("--finetune-evals", type=int, default=4)
    finetune.add_argument("--finetune-checkpoints", type=_range, default=NEAR_OPTIMAL,
                          help="3a: checkpoint ids of the held-out game's data (default 0-9)")
    finetune.add_argument("--finetune-fraction", type=float, default=0.1,
                          help="3a: fraction of those episodes (the small dataset)")
    finetune.add_argument("--online-game", default="minatar/Asterix",
                          help="3b: a pre-training game with difficulty ramping")
    finetune.add_argument("--online-env-steps", type=int, default=20_000,
                          help="3b: environment steps per run")
    finetune.add_argument("--online-evals", type=int, default=5)
    finetune.add_argument("--online-replay-min-size", type=int, default=1_000,
                          help="3b: transitions before the learner starts")
    finetune.add_argument("--online-timeout", type=float, default=3 * 3600,
                          help="3b: stop a run after this many seconds")
    pixels = parser.add_argument_group("pixels (issue item 5)")
    pixels.add_argument("--pixels-args", default="",
                        help="extra arguments of scripts/study_pixels.py (quoted)")
    args = parser.parse_args(argv)
    names = tuple(e.strip() for e in args.experiments.split(",") if e.strip())
    args.design_only = names == (DESIGN,)
    args.experiments = (DESIGN_EXPERIMENTS if args.design_only else
                        EXPERIMENTS if names == (ALL,) else names)
    unknown = [e for e in args.experiments if e not in EXPERIMENTS]
    if unknown:
        parser.error(f"--experiments: unknown {unknown}; choose {DESIGN!r}, {ALL!r} or from "
                     f"{list(EXPERIMENTS)}")
    if args.final_episodes < 0:
        parser.error("--final-episodes must be >= 0")
    if args.online_game not in PRETRAIN_GAMES:
        parser.error(f"--online-game must be a pre-training game, one of {PRETRAIN_GAMES}")
    for name in ("jobs", "seeds", "env_steps", "steps", "evals", "finetune_steps",
                 "finetune_evals", "online_env_steps", "online_evals", "eval_episodes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


# --- the runs --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Job:
    """One `scaled-ql` run of the study.

    Attributes:
      experiment: one of `EXPERIMENTS` (the one that owns the run; claim 2 also reads claim 1's
        Scaled QL runs, claim 3 starts from one of them).
      label: the run's configuration name (`run.name`: the report's group).
      seed: its seed.
      kind: "pretrain", "finetune_offline" or "finetune_online" (the sub-command).
      run_dir: its run directory.
      command: the command line, without --resume.
      target: the step the run ends at: SGD steps (pretrain, finetune_offline) or
        environment steps (finetune_online).
      after: runs that must be done before this one starts (the pre-trained checkpoint).
    """

    experiment: str
    label: str
    seed: int
    kind: str
    run_dir: pathlib.Path
    command: tuple[str, ...]
    target: int
    after: tuple["Job", ...] = ()

    @property
    def name(self) -> str:
        return f"{self.experiment}: {self.label}, seed {self.seed}"


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")


def _every(steps: int, rounds: int) -> int:
    return max(1, steps // rounds)


def _eval_flags(args, every: int) -> list[str]:
    return ["--eval-every", str(every), "--eval-episodes", str(args.eval_episodes),
            "--eval-max-frames", str(args.eval_max_frames), "--eval-workers", "0"]


def network_flags(width: float, blocks: int, ff: int, num_groups: int,
                  feature_norm: bool) -> list[str]:
    return ["--torso", "minatar_resnet", "--width", f"{width:g}", "--num-blocks", str(blocks),
            "--feed-forward-size", str(ff), "--num-groups", str(num_groups),
            *([] if feature_norm else ["--no-feature-norm"])]


def sizes(args) -> dict[str, tuple[float, int, int]]:
    """Claim 2's sizes: label -> (width, blocks, feed-forward); M is claim 1's network."""
    return {"S": tuple(args.size_s), "M": (args.width, args.num_blocks, args.feed_forward_size),
            "L": tuple(args.size_l)}


def tried_steps(args, factor: float | None) -> int:
    """The step budget of a `TRIED` variant."""
    return max(1, int(args.steps * factor)) if factor else args.steps


def claim1_seeds(args) -> int:
    """Seeds of Scaled QL M, BC M and TRIED_WITH_ALL_SEEDS: --claim1-seeds, by default 10 (never
    fewer than --seeds)."""
    return max(args.seeds, 10 if args.claim1_seeds is None else args.claim1_seeds)


def paper_cql_seeds(args) -> int:
    """Seeds of claims 2 and 3b at PAPER.md's CQL weight (sizes S and L; pre-trained from the
    CQL 0.1 run, and from scratch beyond --seeds): claim1_seeds, as declared at PAPER_CQL."""
    return claim1_seeds(args)


def tried_seeds(args, label: str) -> int:
    """Seeds of a `TRIED` variant: claim 1's for those in TRIED_WITH_ALL_SEEDS, else
    --tried-seeds."""
    return claim1_seeds(args) if label in TRIED_WITH_ALL_SEEDS else args.tried_seeds


def _pretrain_job(args, out, experiment, label, method, network, method_flags, ids, seed,
                  steps=None, games=PRETRAIN_GAMES):
    """A `scaled-ql pretrain` job on `games`; `steps` (default --steps) with the evaluation and
    checkpoint period of --steps, so that longer runs' curves share their first points."""
    run_dir = out / "runs" / "pretrain" / _slug(label) / f"seed{seed}"
    every = _every(args.steps, args.evals)
    steps = steps or args.steps
    command = (*CLI, "pretrain", "--data", str(out / "data"),
               "--games", ",".join(games), "--checkpoints", f"{ids[0]}-{ids[1]}",
               "--steps", str(steps),
               *network_flags(*network, args.num_groups, args.feature_norm), "--cache-data",
               "--batch-size", str(args.batch_size), "--learning-rate", f"{args.learning_rate:g}",
               "--target-update-period", str(args.target_update_period),
               "--n-step", str(args.n_step), *method_flags, *_eval_flags(args, every),
               "--checkpoint-every", str(every), "--seed", str(seed), "--name", label,
               "--method", method, "--no-progress", "--out", str(run_dir))
    return Job(experiment, label, seed, "pretrain", run_dir, command, steps)


SCALED_QL_M = "Scaled QL M"


def _tried_job(args, out, label, seed) -> Job:
    """Seed `seed` of claim 1's `TRIED` variant `label`."""
    _, method, cql, factor = next(t for t in TRIED if t[0] == label)
    flags = (["--bc"] if method == "bc" else
             ["--cql-alpha", f"{args.cql_alpha if cql is None else cql:g}"])
    return _pretrain_job(args, out, "claim1_tried", label, method, sizes(args)["M"], flags,
                         SUBOPTIMAL, seed, steps=tried_steps(args, factor))


def finetune_label(start: str, variant: str | None = None, game: str = HELD_OUT_GAME) -> str:
    """Claim 3a's configuration name: 'Freeway: pre-trained[, <FINETUNE_TRIED variant>]'."""
    return f"{game.split('/')[-1]}: {start}" + (f", {variant}" if variant else "")


def finetune_starts(changes: dict) -> tuple[str, ...]:
    """The starts a claim-3a variant runs: all; without from scratch when the pre-trained base
    changes (from scratch reads none of its weights); only pre-trained when the change is how
    the copied torso trains (`TORSO_TRAINING_CHANGES`)."""
    names = tuple(name for name, _ in FINETUNE_STARTS)
    if any(key in changes for key in TORSO_TRAINING_CHANGES):
        return ("pre-trained",)
    return names if "base" not in changes else tuple(n for n in names if n != "from scratch")


def scratch_variant(variant: str | None, changes: dict) -> str | None:
    """The variant whose from-scratch runs a claim-3a variant compares with: its own, or, when
    it changes only what the pre-trained start takes (`PRETRAINED_ONLY_CHANGES`) besides other
    settings, the variant of those other settings (None: the study's own)."""
    if not any(k in changes for k in PRETRAINED_ONLY_CHANGES):
        return variant
    rest = {k: v for k, v in changes.items() if k not in PRETRAINED_ONLY_CHANGES}
    if not rest:
        return None
    return next(name for name, other in FINETUNE_TRIED if other == rest)


def random_torso_setting(variant: str | None) -> str | None | bool:
    """The `RANDOM_TORSO_SETTINGS` entry whose random torso a frozen pre-trained torso of
    claim 3a (`variant` None: the study's) is compared with: the one of its from scratch
    (`scratch_variant`); False when the control has none."""
    setting = scratch_variant(variant, dict(FINETUNE_TRIED).get(variant, {}))
    return setting if setting in RANDOM_TORSO_SETTINGS else False


def _finetune_offline_job(args, out, experiment, base: Job, start: str, seed: int,
                          variant: str | None = None, changes: dict | None = None,
                          game: str = HELD_OUT_GAME) -> Job:
    """A `scaled-ql finetune-offline` job of claim 3a to `game` from `base`'s final checkpoint,
    with a `FINETUNE_TRIED` variant's `changes` (evaluated as often as the study's own runs)."""
    changes = changes or {}
    label = finetune_label(start, variant, game)
    run_dir = out / "runs" / "finetune_offline" / _slug(label) / f"seed{seed}"
    every = _every(args.finetune_steps, args.finetune_evals)
    steps = args.finetune_steps * changes.get("steps", 1)
    first, last = args.finetune_checkpoints
    fraction = changes.get("fraction", args.finetune_fraction)
    learner = (["--learning-rate", f"{changes['learning_rate']:g}"]
               if "learning_rate" in changes else [])
    if "frozen_torso" in changes:
        learner += ["--frozen-torso-steps", str(round(steps * changes["frozen_torso"]))]
    if "torso_lr" in changes:
        learner += ["--torso-learning-rate-scale", f"{changes['torso_lr']:g}"]
    if changes.get("fresh_head"):
        learner += ["--fresh-head"]
    command = (*CLI, "finetune-offline", "--checkpoint", str(base.run_dir),
               "--checkpoint-step", str(base.target), "--game", game,
               "--data", str(out / "data"), "--checkpoints", f"{first}-{last}",
               "--episode-fraction", f"{fraction:g}", "--cache-data",
               "--steps", str(steps), *dict((*FINETUNE_STARTS, RANDOM_TORSO))[start], *learner,
               *_eval_flags(args, every), "--checkpoint-every", str(every),
               "--seed", str(seed), "--name", label, "--no-progress", "--out", str(run_dir))
    return Job(experiment, label, seed, "finetune_offline", run_dir, command, steps, (base,))


def _finetune_online_job(args, out, experiment, base: Job, start: str, seed: int,
                         variant: str | None = None) -> Job:
    """A `scaled-ql finetune-online` job of claim 3b from `base`'s final checkpoint (`start`:
    "pre-trained" or "from scratch"), on the online game with difficulty ramping."""
    label = (f"{args.online_game.split('/')[-1]} ramping: {start}"
             + (f", {variant}" if variant else ""))
    run_dir = out / "runs" / "finetune_online" / _slug(label) / f"seed{seed}"
    learner_steps = args.online_env_steps * ONLINE_SAMPLES_PER_INSERT // args.batch_size
    command = (*CLI, "finetune-online", "--checkpoint", str(base.run_dir),
               "--checkpoint-step", str(base.target), "--game", args.online_game,
               "--difficulty", "1", "--env-steps", str(args.online_env_steps),
               "--launch", "local_mt", "--timeout", f"{args.online_timeout:g}",
               "--replay-min-size", str(args.online_replay_min_size),
               *(["--from-scratch"] if start == "from scratch" else []),
               *_eval_flags(args, _every(learner_steps, args.online_evals)),
               "--seed", str(seed), "--name", label, "--out", str(run_dir))
    return Job(experiment, label, seed, "finetune_online", run_dir, command,
               args.online_env_steps, (base,))


def finetune_tried_seeds(args, variant: str) -> int:
    """Seeds of a `FINETUNE_TRIED` variant: --seeds once promoted, else --tried-seeds."""
    promoted = FINETUNE_TRIED_WITH_ALL_SEEDS + FINETUNE_TRIED_COMBINED
    return args.seeds if variant in promoted else args.tried_seeds


def build_jobs(args, out: pathlib.Path) -> list[Job]:
    """Every run of the study, seed-major (seed 0 of every experiment first, so that partial
    results cover every claim), claim 1's Scaled QL seed 0 first of all (claim 3 needs it)."""
    out = pathlib.Path(out)
    net = sizes(args)
    sql = ["--cql-alpha", f"{args.cql_alpha:g}"]
    near_seeds = args.seeds if args.near_optimal_seeds is None else args.near_optimal_seeds
    base = _pretrain_job(args, out, "claim1", SCALED_QL_M, "scaled_ql", net["M"], sql,
                         SUBOPTIMAL, 0)
    jobs = []
    for seed in range(max(args.seeds, near_seeds)):
        if seed < args.seeds:
            jobs += [
                base if seed == 0 else _pretrain_job(
                    args, out, "claim1", SCALED_QL_M, "scaled_ql", net["M"], sql, SUBOPTIMAL,
                    seed),
                _pretrain_job(args, out, "claim1", "C51 M", "c51", net["M"],
                              ["--cql-alpha", "0"], SUBOPTIMAL, seed),
                _pretrain_job(args, out, "claim1", "BC M", "bc", net["M"], ["--bc"],
                              SUBOPTIMAL, seed),
                _pretrain_job(args, out, "claim2", "Scaled QL S", "scaled_ql", net["S"], sql,
                              SUBOPTIMAL, seed),
                _pretrain_job(args, out, "claim2", "Scaled QL L", "scaled_ql", net["L"], sql,
                              SUBOPTIMAL, seed),
            ]
        if seed < near_seeds:
            jobs.append(_pretrain_job(args, out, "claim1_near_optimal",
                                      "Scaled QL M near-optimal", "scaled_ql", net["M"], sql,
                                      NEAR_OPTIMAL, seed))
        if seed >= args.seeds:
            continue
        jobs += [_finetune_offline_job(args, out, "claim3a", base, start, seed)
                 for start, _ in FINETUNE_STARTS]
        jobs += [_finetune_online_job(args, out, "claim3b", base, start, seed)
                 for start in ("pre-trained", "from scratch")]
    for seed in range(max(args.tried_seeds, near_seeds)):
        jobs += [_pretrain_job(args, out, "claim1_near_optimal", label, "scaled_ql", net["M"],
                               sql, NEAR_OPTIMAL, seed, steps=tried_steps(args, factor))
                 for label, factor in NEAR_OPTIMAL_TRIED]
    for seed in range(args.seeds, claim1_seeds(args)):  # claim 1's extra seeds, then the tries
        jobs += [_pretrain_job(args, out, "claim1", label, method, net["M"], flags, SUBOPTIMAL,
                               seed)
                 for label, method, flags in ((SCALED_QL_M, "scaled_ql", sql),
                                              ("BC M", "bc", ["--bc"]))]
    for seed in range(max(args.tried_seeds, claim1_seeds(args))):  # after everything else
        jobs += [_tried_job(args, out, label, seed) for label, *_ in TRIED
                 if seed < tried_seeds(args, label)]
    for seed in range(max(args.tried_seeds, args.seeds)):
        for variant, changes in FINETUNE_TRIED:
            if seed >= finetune_tried_seeds(args, variant):
                continue
            start_from = _tried_job(args, out, changes["base"], 0) if "base" in changes else base
            jobs += [_finetune_offline_job(args, out, "claim3a_tried", start_from, start, seed,
                                           variant, changes)
                     for start in finetune_starts(changes)]
    for seed in range(args.seeds):  # the random-features control (from scratch: no weights)
        jobs += [_finetune_offline_job(args, out, "claim3a_tried", base, RANDOM_TORSO[0], seed,
                                       variant, dict(FINETUNE_TRIED).get(variant, {}))
                 for variant in RANDOM_TORSO_SETTINGS]
    paper_base = _tried_job(args, out, PAPER_CQL_LABEL, 0)
    for seed in range(paper_cql_seeds(args)):  # claims 2 and 3b at PAPER.md's CQL weight
        jobs += [_pretrain_job(args, out, "claim2_cql_0_1", f"Scaled QL {size}, {PAPER_CQL_SUFFIX}",
                               "scaled_ql", net[size], ["--cql-alpha", f"{PAPER_CQL:g}"],
                               SUBOPTIMAL, seed) for size in ("S", "L")]
        jobs.append(_finetune_online_job(args, out, "claim3b_cql_0_1", paper_base, "pre-trained",
                                         seed, f"from {PAPER_CQL_SUFFIX}"))
        if seed >= args.seeds:  # from scratch reads no weights: claim 3b's runs, more seeds
            jobs.append(_finetune_online_job(args, out, "claim3b_cql_0_1", base, "from scratch",
                                             seed))
    jobs += _other_held_out_jobs(args, out, "claim3a_second_game")
    seen = _pretrain_job(args, out, "claim3a_seen_game", SEEN_BASE, "scaled_ql", net["M"],
                         ["--cql-alpha", f"{PAPER_CQL:g}"], SUBOPTIMAL, 0, games=STUDY_GAMES)
    jobs.append(seen)
    for seed in range(args.seeds):
        jobs += [_finetune_offline_job(args, out, "claim3a_seen_game", seen, start, seed,
                                       SEEN_VARIANT, {"fresh_head": True}, game=game)
                 for game in SEEN_GAMES for start in SEEN_STARTS]
    jobs += _other_held_out_jobs(args, out, "claim3a_third_game")
    for follow in FOLLOW_UPS:
        jobs += _follow_up_jobs(args, out, follow, jobs)
    jobs += _other_held_out_jobs(args, out, "claim3a_fourth_game")
    return jobs


def _follow_up_jobs(args, out, follow: FollowUp, jobs: list[Job]) -> list[Job]:
    """A `FollowUp`'s runs: its pre-training run (unless `jobs` has it: size M's is the third
    game's), then its two starts, claim1_seeds each, seed-major."""
    base = _held_out_pretrain_job(args, out, follow.experiment, follow.game, follow.size)
    listed = next((j for j in jobs if j.run_dir == base.run_dir), None)
    changes = {} if follow.fraction is None else {"fraction": follow.fraction}
    return [*([] if listed else [base]),
            *(_finetune_offline_job(args, out, follow.experiment, listed or base, start, seed,
                                    follow.variant, changes, game=follow.game)
              for seed in range(claim1_seeds(args)) for start in FOLLOW_UP_STARTS)]


def _held_out_pretrain_job(args, out, experiment: str, game: str, size: str = "M") -> Job:
    """Scaled QL of `size` at CQL 0.1 pre-trained on the games but `game` (seed 0)."""
    return _pretrain_job(args, out, experiment, held_out_base(game, size), "scaled_ql",
                         sizes(args)[size], ["--cql-alpha", f"{PAPER_CQL:g}"], SUBOPTIMAL, 0,
                         games=games_without(game))


def _other_held_out_jobs(args, out, experiment: str) -> list[Job]:
    """Claim 3a with `OTHER_HELD_OUT[experiment]` held out: Scaled QL M at CQL 0.1 pre-trained
    on the other four games (seed 0), then the `OTHER_STARTS` of fine-tuning, --seeds each
    (claim1_seeds for those of `OTHER_MORE_SEEDS` and `OTHER_SEEDS_FROM_START`), seed-major."""
    game = OTHER_HELD_OUT[experiment]
    base = _held_out_pretrain_job(args, out, experiment, game)
    more = OTHER_MORE_SEEDS.get(experiment, OTHER_SEEDS_FROM_START.get(experiment, ()))
    return [base, *(_finetune_offline_job(args, out, experiment, base, start, seed, game=game)
                    for seed in range(claim1_seeds(args) if more else args.seeds)
                    for start in OTHER_STARTS if seed < args.seeds or start in more)]


def fingerprint(command) -> list[str]:
    """The command without what a resumed run may change (RESUMABLE_FLAGS and their values,
    SWITCHES_IGNORED) and without the interpreter's path: two commands with the same fingerprint
    make the same run, whichever checkout's virtual environment runs them."""
    kept, skip = [], False
    parts = list(command)
    if parts and os.path.basename(parts[0]).startswith("python"):
        parts[0] = "python"
    for part in parts:
        if skip:
            skip = False
        elif part in RESUMABLE_FLAGS:
            skip = True
        elif part not in SWITCHES_IGNORED:
            kept.append(part)
    return kept


def final_step(run_dir: pathlib.Path) -> int | None:
    """The last evaluated learner step of a run (None: no evaluation yet)."""
    from scaled_ql.evaluation.results import read_results

    try:
        evaluations = read_results(run_dir).evaluations
    except (OSError, ValueError):
        return None
    return max((e.step for e in evaluations), default=None)


def job_state(job: Job) -> str:
    """'done', 'resume' (checkpoints, short of its target), 'stale' (made by another command)
    or 'fresh' (nothing usable).  A run directory without study_job.json counts as made by
    this command."""
    run_dir = job.run_dir
    if not run_dir.exists():
        return "fresh"
    record = run_dir / JOB_FILE
    if record.exists() and fingerprint(json.loads(record.read_text())["command"]) != fingerprint(
            job.command):
        return "stale"
    if (run_dir / "summary.json").exists():
        if job.kind == "finetune_online":
            stats = run_dir / "online_stats.json"
            if stats.exists() and json.loads(stats.read_text())["env_steps"] >= job.target:
                return "done"
        else:
            step = final_step(run_dir)
            if step is not None and step >= job.target:
                return "done"
    if job.kind != "finetune_online" and any((run_dir / "checkpoints").glob("[0-9]*")):
        return "resume"
    return "fresh"


def show(command) -> str:
    """A command as a shell line, `scaled-ql ...` with paths relative to the repository."""
    parts = list(command)
    if tuple(parts[:3]) == CLI:
        parts = ["scaled-ql", *parts[3:]]
    elif parts and parts[0] == sys.executable:
        parts[0] = ".venv/bin/python"
    return " ".join(shlex.quote(p) for p in parts).replace(str(ROOT) + "/", "")


def _record(out: pathlib.Path, entry: dict) -> None:
    with open(out / "jobs.jsonl", "a") as f:
        f.write(json.dumps(entry) + "\n")


def _logged_call(command, run_dir: pathlib.Path) -> int:
    """Runs `command` (one core: JOB_ENV) with its output appended to RUN_DIR/study.log after a
    line with the time and the command; its exit code."""
    with open(run_dir / LOG_FILE, "a") as log:
        log.write(f"\n# {datetime.datetime.now().isoformat(timespec='seconds')} {show(command)}\n")
        log.flush()
        return subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                               env={**os.environ, **JOB_ENV})


def _run_one(job: Job, out: pathlib.Path) -> dict:
    state = job_state(job)
    if state in ("stale", "fresh") and job.run_dir.exists():
        shutil.rmtree(job.run_dir)  # another command's run, or an unusable interrupted one
    job.run_dir.mkdir(parents=True, exist_ok=True)
    (job.run_dir / JOB_FILE).write_text(json.dumps(
        {"command": list(job.command), "fingerprint": fingerprint(job.command)}, indent=1))
    command = [*job.command, *(["--resume"] if state == "resume" else [])]
    started = time.time()
    code = _logged_call(command, job.run_dir)
    entry = {"job": job.name, "experiment": job.experiment, "label": job.label,
             "seed": job.seed, "run_dir": str(job.run_dir), "resumed": state == "resume",
             "exit": code, "seconds": round(time.time() - started, 1),
             "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
             "command": show(command), "done": job_state(job) == "done"}
    _record(out, entry)
    return entry


def run_jobs(jobs: list[Job], num_parallel: int, out: pathlib.Path) -> list[dict]:
    """Runs every job that is not done, `num_parallel` at a time, each once its `after` runs
    are done; returns the failed attempts (and the jobs left waiting on a failed run)."""
    pending = [j for j in jobs if job_state(j) != "done"]
    total, finished, failures = len(pending), 0, []
    started = time.time()
    print(f"[train] {total} run(s) to do of {len(jobs)}; {num_parallel} at a time", flush=True)
    with concurrent.futures.ThreadPoolExecutor(num_parallel) as pool:
        running: dict = {}
        while pending or running:
            for job in [j for j in pending if all(job_state(a) == "done" for a in j.after)]:
                if len(running) >= num_parallel:
                    break
                pending.remove(job)
                print(f"[train] start {job.name} ({job_state(job)})", flush=True)
                running[pool.submit(_run_one, job, out)] = job
            if not running:  # what is left waits on runs that failed
                failures += [{"job": j.name, "exit": None, "log": "waits on " + ", ".join(
                    a.name for a in j.after if job_state(a) != "done")} for j in pending]
                break
            done, _ = concurrent.futures.wait(running, return_when="FIRST_COMPLETED")
            for future in done:
                job = running.pop(future)
                entry = future.result()
                finished += 1
                print(f"[train] {finished}/{total} {job.name}: exit {entry['exit']} after "
                      f"{entry['seconds'] / 60:.1f} min", flush=True)
                if not entry["done"]:
                    failures.append({"job": job.name, "exit": entry["exit"],
                                     "log": str(job.run_dir / LOG_FILE)})
    _record(out, {"session": "train", "seconds": round(time.time() - started, 1),
                  "runs": total, "jobs": num_parallel})
    return failures



# --- final reading ---------------------------------------------------------------------------

def final_command(args, job: Job) -> tuple[str, ...]:
    """`scaled-ql evaluate` of `job`'s final checkpoint: --final-episodes episodes with the
    rounds' episode cap (and the suite's epsilon and sticky actions), seeded with the run's
    seed; an online run plays the variant it was fine-tuned on."""
    return (*CLI, "evaluate", "--checkpoint", str(job.run_dir),
            "--episodes", str(args.final_episodes), "--max-frames", str(args.eval_max_frames),
            "--workers", "0", "--seed", str(job.seed), "--no-progress", "--overwrite",
            "--out", str(job.run_dir / FINAL_FILE))


def final_done(args, job: Job) -> bool:
    """Whether `job`'s FINAL_FILE reads its final policy as `final_command` does: one round, at
    the run's last evaluated step, with --final-episodes episodes per game, the rounds' cap and
    the run's seed (a run trained further, or another setting, is read again)."""
    from scaled_ql.evaluation.results import read_results

    try:
        results = read_results(job.run_dir / FINAL_FILE)
    except (OSError, ValueError):
        return False
    protocol = results.run.config.get("protocol", {})
    steps = {e.step for e in results.evaluations}
    counts = {len(e.episodes) for e in results.evaluations}
    return (steps == {final_step(job.run_dir)}
            and counts == {args.final_episodes * len(results.games)}
            and protocol.get("max_frames") == args.eval_max_frames
            and results.run.seed == job.seed)


def is_read_final(job: Job) -> bool:
    """Whether `job` is a fine-tuning run of FINAL_EXPERIMENTS, or claim 3a's random-torso
    control at the design's settings (`FINAL_CONTROL`), read by the `final` stage."""
    return job.kind != "pretrain" and (
        job.experiment in FINAL_EXPERIMENTS
        or (job.experiment == "claim3a_tried" and job.label == FINAL_CONTROL))


# Claim 3a's frozen pre-trained torso is also read against this control (a run of
# `claim3a_tried`) with 100 episodes: without it a frozen torso that beats from scratch says
# nothing about transfer (a frozen random torso may do as well).
FINAL_CONTROL = finetune_label(RANDOM_TORSO[0])


def final_jobs(args, jobs: list[Job]) -> list[Job]:
    """The selected runs whose final policies the `final` stage reads."""
    return [j for j in selected_jobs(args, jobs) if is_read_final(j)] \
        if args.final_episodes else []


def _final_one(args, job: Job, out: pathlib.Path) -> dict:
    command = final_command(args, job)
    started = time.time()
    code = _logged_call(command, job.run_dir)
    entry = {"final": job.name, "experiment": job.experiment, "label": job.label,
             "seed": job.seed, "run_dir": str(job.run_dir), "exit": code,
             "seconds": round(time.time() - started, 1),
             "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
             "command": show(command), "done": final_done(args, job)}
    _record(out, entry)
    return entry


def read_final_policies(args, jobs: list[Job], out: pathlib.Path) -> list[dict]:
    """The `final` stage: `final_command` for every done run of `final_jobs` not yet read,
    --jobs at a time; returns the failures (a run not done yet is left for a later call)."""
    todo = [j for j in final_jobs(args, jobs) if job_state(j) == "done"
            and not final_done(args, j)]
    print(f"[final] {len(todo)} final polic{'y' if len(todo) == 1 else 'ies'} to read with "
          f"{args.final_episodes} episodes; {args.jobs} at a time", flush=True)
    failures = []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(_final_one, args, job, out): job for job in todo}
        for k, future in enumerate(concurrent.futures.as_completed(futures), 1):
            job, entry = futures[future], future.result()
            print(f"[final] {k}/{len(todo)} {job.name}: exit {entry['exit']} after "
                  f"{entry['seconds']:.0f} s", flush=True)
            if not entry["done"]:
                failures.append({"job": f"final: {job.name}", "exit": entry["exit"],
                                 "log": str(job.run_dir / LOG_FILE)})
    return failures


def final_files(args, jobs: list[Job], run_dirs) -> list[pathlib.Path]:
    """The FINAL_FILEs of those of `run_dirs` whose final policy has been read."""
    by_dir = {j.run_dir: j for j in jobs if is_read_final(j)}
    return [d / FINAL_FILE for d in run_dirs if d in by_dir and final_done(args, by_dir[d])]

# --- data ------------------------------------------------------------------------------------

def dataset_folder(out: pathlib.Path, game: str) -> pathlib.Path:
    from scaled_ql.datasets.rlds import dataset_dir

    return dataset_dir(pathlib.Path(out) / "data", game, 1, COLLECT_LAYOUT)


def _newest_mtime(folder: pathlib.Path) -> float:
    return max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.iterdir())])


def collect_command(args, out: pathlib.Path, game: str, overwrite: bool) -> list[str]:
    """`scaled-ql collect` of one game with the seed the five-game command gives it."""
    return [*CLI, "collect", "--games", game, "--steps", str(args.env_steps),
            "--policy", "online_c51", "--layout", COLLECT_LAYOUT, "--out", str(out / "data"),
            "--workers", "1", "--seed", str(COLLECT_SEED_STRIDE * STUDY_GAMES.index(game)),
            *(["--overwrite"] if overwrite else [])]


def collect_log(out: pathlib.Path, game: str) -> pathlib.Path:
    """One game's collection log (its tqdm bar): games collected side by side write apart."""
    return out / f"collect_{game.split('/')[-1]}.log"


def _collect_one(out: pathlib.Path, game: str, command: list[str]) -> dict:
    started = time.time()
    with open(collect_log(out, game), "a") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                               env={**os.environ, **JOB_ENV})
    entry = {"job": f"data: {game}", "experiment": "data", "exit": code,
             "seconds": round(time.time() - started, 1), "command": show(command),
             "done": (dataset_folder(out, game) / "dataset_info.json").exists()}
    _record(out, entry)
    return entry


def collect_data(args, out: pathlib.Path) -> list[str]:
    """Collects the games whose dataset folder is not complete, --jobs at a time (each game is
    its own process and keeps its own seed, so the data does not depend on --jobs); returns
    the failed games."""
    commands = {}
    for game in STUDY_GAMES:
        folder = dataset_folder(out, game)
        if (folder / "dataset_info.json").exists():
            continue
        unfinished = sorted(folder.parent.glob("incomplete.*")) if folder.parent.exists() else []
        busy = [u for u in unfinished if time.time() - _newest_mtime(u) < 600]
        if busy:
            raise CollectionInProgressError(
                f"{busy[0]} was written to in the last 10 minutes: another `scaled-ql "
                "collect` is running into this data dir; let it finish (or stop it), then "
                "run the study again")
        commands[game] = collect_command(args, out, game, overwrite=bool(unfinished))
        print(f"[data] {show(commands[game])}", flush=True)
    if args.dry_run or not commands:
        return []
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        entries = list(pool.map(lambda g: _collect_one(out, g, commands[g]), commands))
    _record(out, {"session": "data", "seconds": round(time.time() - started, 1),
                  "games": len(commands), "jobs": args.jobs})
    return [e["job"].removeprefix("data: ") for e in entries if e["exit"] != 0]


def _read_dataset(out: pathlib.Path, game: str) -> dict:
    """One game's entry of `data_table` (its dataset read in full, frames not decoded)."""
    from scaled_ql._quiet import quiet_third_party
    from scaled_ql.datasets import inspect_run, open_run

    quiet_third_party()
    folder = dataset_folder(out, game)
    stamp = (folder / "dataset_info.json").stat().st_mtime
    report = inspect_run(open_run(game, 1, data_dir=out / "data", layout=COLLECT_LAYOUT),
                         decode_frames=False)
    return {"folder": str(folder), "finished": stamp, "checkpoints": {
        str(c): {"episodes": s.episodes, "steps": s.steps,
                 "returns": [float(r) for r in s.returns],
                 "lengths": [int(n) for n in s.lengths]}
        for c, s in sorted(report.checkpoints.items())}}


def data_table(out: pathlib.Path, num_parallel: int = 1) -> dict:
    """game -> {"folder", "finished" (epoch s), "checkpoints": {id: {episodes, steps, returns,
    lengths}}} of every complete dataset, cached in OUT/data_table.json (reading a 300k-step
    dataset takes minutes; `num_parallel` games at a time)."""
    import multiprocessing

    cache_path = out / "data_table.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    todo = []
    for game in STUDY_GAMES:
        info = dataset_folder(out, game) / "dataset_info.json"
        if not info.exists():
            continue
        entry = cache.get(game, {})
        if entry.get("folder") != str(info.parent) or entry.get("finished") != info.stat().st_mtime:
            todo.append(game)
    if todo:
        print(f"[report] reading the datasets of {', '.join(todo)} (minutes each)", flush=True)
        with concurrent.futures.ProcessPoolExecutor(
                num_parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
            for game, entry in zip(todo, pool.map(_read_dataset, [out] * len(todo), todo)):
                cache[game] = entry
                cache_path.write_text(json.dumps(cache))
    return {g: cache[g] for g in STUDY_GAMES
            if (dataset_folder(out, g) / "dataset_info.json").exists()}


def split_returns(entry: dict, ids: tuple[int, int]) -> list[float]:
    return [r for c, s in entry["checkpoints"].items() if ids[0] <= int(c) <= ids[1]
            for r in s["returns"]]


def write_data_run(table: dict, games, ids: tuple[int, int], run_dir: pathlib.Path,
                   label: str) -> pathlib.Path:
    """The behaviour policy as a run the report reads: the logged episodes of checkpoint ids
    `ids` of every game as one evaluation round at step 0 (method 'behaviour')."""
    from scaled_ql.evaluation import RunInfo, append_evaluation
    from scaled_ql.evaluation.results import Episode

    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    episodes = [Episode(game, r, n, n)  # a MinAtar frame is a step
                for game in games
                for c, s in table[game]["checkpoints"].items() if ids[0] <= int(c) <= ids[1]
                for r, n in zip(s["returns"], s["lengths"])]
    info = RunInfo(name=label, method="behaviour", seed=0, config={
        "checkpoint_ids": list(ids), "note": "the logged data's own episodes"})
    append_evaluation(run_dir, info, tuple(games), 0, episodes)
    return run_dir


def collection_seconds(log_path: pathlib.Path) -> float | None:
    """Wall time of the collection(s) logged in collect.log: the elapsed time of each tqdm bar
    (`[MM:SS<` or `[H:MM:SS<`), summed over restarts (a smaller elapsed starts a new bar)."""
    if not log_path.exists():
        return None
    total, peak = 0.0, 0.0
    for match in re.finditer(r"\[(?:(\d+):)?(\d+):(\d+)<", log_path.read_text(errors="ignore")):
        hours, minutes, seconds = (int(x) if x else 0 for x in match.groups())
        elapsed = 3600 * hours + 60 * minutes + seconds
        if elapsed < peak:
            total, peak = total + peak, elapsed
        else:
            peak = elapsed
    return total + peak if total + peak > 0 else None


def collection_wall_time(out: pathlib.Path) -> tuple[float | None, str]:
    """(seconds, where they come from) of the data stage: its sessions in jobs.jsonl, or, for
    a study collected one game at a time into one collect.log, that log's tqdm times."""
    sessions = [a for a in _attempts(out) if a.get("session") == "data"]
    if sessions:
        jobs = sorted({a["jobs"] for a in sessions})
        return (sum(a["seconds"] for a in sessions),
                f"the data stage's wall time in `{_rel(out)}/jobs.jsonl`, "
                f"{' or '.join(map(str, jobs))} game(s) at a time")
    return (collection_seconds(out / "collect.log"),
            f"tqdm's elapsed time in `{_rel(out)}/collect.log`")


# --- verdicts --------------------------------------------------------------------------------

def _fmt(interval: dict | None) -> str:
    if interval is None:
        return "n/a"
    return f"{interval['estimate']:.3f} [{interval['lower']:.3f}, {interval['upper']:.3f}]"


def verdict(better: dict | None, other: dict | None, *, other_is_data: bool,
            claim: str) -> tuple[bool | None, str]:
    """The study's rule: `better` (an IQM interval) beats `other` only when its lower 95% CI
    end clears the other's IQM estimate (the behaviour policy: `other_is_data`) or the other's
    upper CI end (another method).  Returns (reproduced or None when not measured, a line)."""
    if better is None or other is None:
        return None, f"{claim}: **not measured** (runs missing)"
    threshold = other["estimate"] if other_is_data else other["upper"]
    what = "its IQM" if other_is_data else "its upper CI end"
    ok = better["lower"] > threshold
    relation = ">" if ok else "<="
    return ok, (f"{claim}: **{'reproduced' if ok else 'not reproduced'}** (lower CI end "
                f"{better['lower']:.3f} {relation} {threshold:.3f}, {what}; "
                f"{_fmt(better)} vs {_fmt(other)})")


def scaling_verdict(points: list[tuple[str, int, dict]],
                    claim: str = "Claim 2 (Scaled QL improves with model size)"
                    ) -> tuple[bool | None, str]:
    """Claim 2 from (label, parameters, IQM interval) per size: reproduced when there are >= 3
    sizes spanning >= 10x parameters, the IQM estimates do not decrease with size, and the
    largest size's lower CI end clears the smallest's upper CI end."""
    if len(points) < 3:
        return None, f"{claim}: **not measured** ({len(points)} of 3 sizes have results)"
    points = sorted(points, key=lambda p: p[1])
    span = points[-1][1] / points[0][1]
    estimates = [p[2]["estimate"] for p in points]
    monotone = all(a <= b for a, b in zip(estimates, estimates[1:]))
    small, large = points[0], points[-1]
    clears = large[2]["lower"] > small[2]["upper"]
    ok = span >= 10 and monotone and clears
    detail = ", ".join(f"{label} ({params:,} params) {_fmt(iqm)}" for label, params, iqm in points)
    reasons = [] if ok else [r for r, bad in (
        (f"the sizes span {span:.1f}x < 10x parameters", span < 10),
        ("the IQM estimates decrease somewhere with size", not monotone),
        (f"{large[0]}'s lower CI end {large[2]['lower']:.3f} <= {small[0]}'s upper CI end "
         f"{small[2]['upper']:.3f}", not clears)) if bad]
    return ok, (f"{claim}: **{'reproduced' if ok else 'not reproduced'}**"
                + (f" ({'; '.join(reasons)})" if reasons else "") + f": {detail}")


# --- reports ---------------------------------------------------------------------------------

def done_runs(jobs: list[Job], labels, below_seed: int | None = None) -> list[pathlib.Path]:
    """The run directories of `labels`' done runs (only seeds below `below_seed` if given)."""
    return [j.run_dir for j in jobs if j.label in labels and job_state(j) == "done"
            and (below_seed is None or j.seed < below_seed)]


def report(run_dirs: list[pathlib.Path], out_dir: pathlib.Path) -> dict | None:
    """`scaled-ql report` of `run_dirs` into `out_dir` (in this process); its summary.json, or
    None when no run has results."""
    from scaled_ql.evaluation import write_report

    if out_dir.exists():
        shutil.rmtree(out_dir)
    if not run_dirs:
        return None
    try:
        write_report(run_dirs, out_dir, seed=0)
    except ValueError as error:  # no complete evaluation yet
        print(f"[report] {out_dir.name}: {error}", file=sys.stderr)
        return None
    return json.loads((out_dir / "summary.json").read_text())


def group(summary: dict | None, label: str) -> dict | None:
    for g in (summary or {}).get("groups", []):
        if g["label"] == label:
            return g
    return None


def iqm(summary: dict | None, label: str) -> dict | None:
    g = group(summary, label)
    return g["aggregates"].get("IQM") if g else None


def plot_data(table: dict, path: pathlib.Path) -> None:
    """Mean return of the logged episodes per checkpoint id, one panel per game."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.0 * len(table), 3.0), dpi=100)
    FigureCanvasAgg(fig)
    for i, (game, entry) in enumerate(table.items()):
        ax = fig.add_subplot(1, len(table), i + 1)
        ids = sorted(int(c) for c in entry["checkpoints"])
        means = [sum(entry["checkpoints"][str(c)]["returns"])
                 / max(1, len(entry["checkpoints"][str(c)]["returns"])) for c in ids]
        ax.plot(ids, means, marker="o")
        ax.axvspan(SUBOPTIMAL[0] - 0.4, SUBOPTIMAL[1] + 0.4, color="grey", alpha=0.2)
        ax.set_title(game + (" (held out)" if game == HELD_OUT_GAME else ""), fontsize=9)
        ax.set_xlim(-0.5, 9.5)
        ax.set_xticks(range(10))
        ax.set_xlabel("checkpoint id")
        if i == 0:
            ax.set_ylabel("mean return of logged episodes")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")


def plot_online_curves(jobs: list[Job], path: pathlib.Path) -> bool:
    """Claim 3b (both CQL weights): mean evaluation return against environment steps (each run's
    learning_curve.csv), mean over seeds with the seeds' min-max band; False if no run."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from scaled_ql.runners.finetune_offline import read_curve

    curves: dict[str, list] = {}
    for job in jobs:
        if job.experiment.startswith("claim3b") and job_state(job) == "done":
            rows = read_curve(job.run_dir)
            if rows:
                curves.setdefault(job.label, []).append(
                    [(float(r["env_steps"]), float(r["mean_return"])) for r in rows])
    if not curves:
        return False
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, runs in curves.items():
        length = min(len(r) for r in runs)  # rounds at the same learner steps in every seed
        points = np.asarray([r[:length] for r in runs])  # [seeds, rounds, (env steps, return)]
        x, y = points[:, :, 0].mean(0), points[:, :, 1]
        ax.plot(x, y.mean(0), marker="o", label=f"{label} ({len(runs)} seed(s))")
        ax.fill_between(x, y.min(0), y.max(0), alpha=0.2, linewidth=0)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return")
    ax.set_title("mean over seeds; band: the seeds' min-max", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return True


def plot_finetune_variants(args, jobs: list[Job], path: pathlib.Path) -> bool:
    """Claim 3a and each `FINETUNE_TRIED` variant in its own panel: the IQM curve of every
    start of fine-tuning with its 95% CI band (the report's curves, one report per label), and
    the random, frozen torso where the control ran; False when no run is done."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    settings = [(f"the study's: {args.finetune_fraction:.0%} of the episodes, "
                 f"{args.finetune_steps:,} steps", None, {}), *(
        (variant, variant, changes) for variant, changes in FINETUNE_TRIED)]
    fig = Figure(figsize=(3.6 * len(settings), 3.6), dpi=100)
    FigureCanvasAgg(fig)
    drawn = False
    for i, (title, variant, changes) in enumerate(settings):
        ax = fig.add_subplot(1, len(settings), i + 1, sharey=fig.axes[0] if i else None)
        shown = []  # (label, colour, legend)
        for color, (start, _) in zip(("C0", "C1", "C2"), FINETUNE_STARTS):
            own = start not in finetune_starts(changes)  # another setting's runs stand in
            stand_in = scratch_variant(variant, changes) if own else variant
            shown.append((finetune_label(start, stand_in), color,
                          start + (f" ({stand_in or 'the study'}'s runs)" if own else "")))
        setting = random_torso_setting(variant)
        if setting is not False:  # the control the panel's frozen torso is compared with
            shown.append((finetune_label(RANDOM_TORSO[0], setting), "C3", RANDOM_TORSO[0] + (
                f" ({setting or 'the study'}'s runs)" if setting != variant else "")))
        for label, color, legend in shown:
            curve = iqm_curve_of_runs(done_runs(jobs, (label,)))
            if curve is None:
                continue
            drawn = True
            ax.plot(curve.x, curve.estimate, marker="o", markersize=3, color=color,
                    label=legend)
            ax.fill_between(curve.x, curve.lower, curve.upper, color=color, alpha=0.2,
                            linewidth=0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("learner step")
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(frameon=False, fontsize=7, loc="lower right")
    fig.axes[0].set_ylabel("IQM DQN-normalized score")
    fig.tight_layout()
    if drawn:
        fig.savefig(path, format="png")
    return drawn


def parameter_counts(args) -> dict[str, dict[str, int]]:
    """Size label -> make_networks(...).parameter_counts of the pre-training network (the four
    games' heads): 'total_used' (what run.num_params records) and 'torso'."""
    import jax

    from scaled_ql.environments.games import get_game
    from scaled_ql.networks import NetworkConfig, make_networks
    from scaled_ql.types import MINATAR_OBSERVATION

    counts = {}
    for label, (width, blocks, ff) in sizes(args).items():
        networks = make_networks(
            NetworkConfig(torso="minatar_resnet", width_multiplier=width, num_blocks=blocks,
                          feed_forward_size=ff, num_groups=args.num_groups),
            [get_game(g).num_actions for g in PRETRAIN_GAMES], MINATAR_OBSERVATION)
        counts[label] = networks.parameter_counts(networks.init(jax.random.PRNGKey(0)))
    return counts


def pixels_stage(args, out: pathlib.Path, docs: pathlib.Path) -> int:
    """scripts/study_pixels.py as a subprocess (its own resumable stages); skipped once its
    summary exists."""
    pixels_out = out / "pixels"
    if (pixels_out / "summary.md").exists():
        print(f"[pixels] done ({pixels_out / 'summary.md'})", flush=True)
        return 0
    command = [sys.executable, str(ROOT / "scripts" / "study_pixels.py"), "--out",
               str(pixels_out), "--doc", str(docs / "PIXELS.md"),
               *shlex.split(args.pixels_args)]
    print(f"[pixels] {show(command)}", flush=True)
    if args.dry_run:
        return 0
    started = time.time()
    pixels_out.mkdir(parents=True, exist_ok=True)
    with open(pixels_out / LOG_FILE, "a") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    _record(out, {"job": "pixels", "experiment": "pixels", "exit": code,
                  "seconds": round(time.time() - started, 1), "command": show(command),
                  "done": (pixels_out / "summary.md").exists()})
    return code


# --- the document ----------------------------------------------------------------------------

def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def _attempts(out: pathlib.Path) -> list[dict]:
    path = out / "jobs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] \
        if path.exists() else []


def _table_rows(summary: dict, labels, games) -> list[str]:
    rows = [f"| configuration | seeds | parameters | IQM [95% CI] | median | mean | "
            + " | ".join(f"{g.split('/')[-1]}" for g in games) + " |",
            "|---|---:|---:|---:|---:|---:|" + "---:|" * len(games)]
    for label in labels:
        g = group(summary, label)
        if g is None:
            continue
        agg = g["aggregates"]
        params = f"{g['num_params']:,}" if g["num_params"] else "-"
        rows.append(f"| {label} | {len(g['seeds'])} | {params} | {_fmt(agg.get('IQM'))} | "
                    f"{agg['Median']['estimate']:.3f} | {agg['Mean']['estimate']:.3f} | "
                    + " | ".join(f"{g['game_returns'].get(game, float('nan')):.2f}"
                                 for game in games) + " |")
    return rows


def _improvement_lines(summary: dict | None, label: str | None = None,
                       pairs: tuple = ()) -> list[str]:
    """The report's probabilities of improvement that involve `label` or are one of `pairs`
    (x, y)."""
    return [f"- P({p['x']} > {p['y']}) = {_fmt(p)}"
            for p in (summary or {}).get("probability_of_improvement", [])
            if label in (p["x"], p["y"]) or (p["x"], p["y"]) in pairs]


def _figures(results: pathlib.Path, folder: str, names) -> list[str]:
    """Links to the report's plots that exist (a one-group report has no comparisons)."""
    return [f"![{name}](results/{folder}/{name}.png)" for name in names
            if (results / folder / f"{name}.png").exists()]


def write_results(args, out: pathlib.Path, docs: pathlib.Path, jobs: list[Job]) -> pathlib.Path:
    """Reports per experiment into DOCS/results/ and DOCS/RESULTS.md from the run dirs."""
    import numpy as np

    results = docs / "results"
    for experiment in EXPERIMENTS:  # the study's folders are regenerated from the runs; other
        shutil.rmtree(results / experiment, ignore_errors=True)  # pages' figures stay
    results.mkdir(parents=True, exist_ok=True)
    table = data_table(out, args.jobs)
    attempts = _attempts(out)
    counts = parameter_counts(args)
    have_data = all(g in table for g in PRETRAIN_GAMES)
    data_sub = data_all = None
    if have_data:
        data_sub = write_data_run(table, PRETRAIN_GAMES, SUBOPTIMAL,
                                  out / "runs" / "data" / "suboptimal", "data, ids 0-1")
        data_all = write_data_run(table, PRETRAIN_GAMES, NEAR_OPTIMAL,
                                  out / "runs" / "data" / "all", "data, ids 0-9")
    claim1_labels = (SCALED_QL_M, "C51 M", "BC M")
    near_label = "Scaled QL M near-optimal"
    near_tried_labels = tuple(label for label, _ in NEAR_OPTIMAL_TRIED)
    size_labels = ("Scaled QL S", SCALED_QL_M, "Scaled QL L")
    online = args.online_game.split("/")[-1]
    labels_3a = tuple(finetune_label(start) for start, _ in FINETUNE_STARTS)
    labels_3a_tried = (*(finetune_label(start, variant) for variant, changes in FINETUNE_TRIED
                         for start in finetune_starts(changes)),
                       *(finetune_label(RANDOM_TORSO[0], v) for v in RANDOM_TORSO_SETTINGS))
    labels_3b = tuple(f"{online} ramping: {n}" for n in ("pre-trained", "from scratch"))
    labels_other = {experiment: tuple(finetune_label(start, game=game) for start in OTHER_STARTS)
                    for experiment, game in OTHER_HELD_OUT.items()}
    labels_seen = tuple(label for game in SEEN_GAMES for label in seen_game_labels(game).values())
    paper_sizes = (f"Scaled QL S, {PAPER_CQL_SUFFIX}", PAPER_CQL_LABEL,
                   f"Scaled QL L, {PAPER_CQL_SUFFIX}")
    paper_3b = (f"{labels_3b[0]}, from {PAPER_CQL_SUFFIX}", labels_3b[1])
    tried_labels = tuple(label for label, *_ in TRIED)
    report_runs = {
        "claim1": done_runs(jobs, claim1_labels) + ([data_sub] if data_sub else []),
        "claim1_near_optimal": (done_runs(jobs, (near_label, *near_tried_labels))
                                + ([data_all] if data_all else [])),
        "claim2": done_runs(jobs, size_labels, below_seed=args.seeds),  # 5 seeds per size
        "claim3a": done_runs(jobs, labels_3a),
        "claim3b": done_runs(jobs, labels_3b, below_seed=args.seeds),  # (scratch has 10)
        "claim1_tried": (done_runs(jobs, (SCALED_QL_M, "C51 M", "BC M", *tried_labels))
                         + ([data_sub] if data_sub else [])),
        "claim3a_tried": done_runs(jobs, labels_3a + labels_3a_tried),
        "claim2_cql_0_1": done_runs(jobs, paper_sizes, below_seed=paper_cql_seeds(args)),
        "claim3b_cql_0_1": done_runs(jobs, paper_3b),
        **{experiment: done_runs(jobs, labels) for experiment, labels in labels_other.items()},
        "claim3a_seen_game": done_runs(jobs, labels_seen, below_seed=args.seeds),
        **{f.experiment: done_runs(jobs, follow_up_labels(f)) for f in FOLLOW_UPS},
    }
    reports = {e: report(dirs, results / e) for e, dirs in report_runs.items()}
    # Claim 3a's final reading has the random-torso control beside it (`FINAL_CONTROL`).
    final_runs = {**report_runs, "claim3a": report_runs["claim3a"]
                  + done_runs(jobs, (FINAL_CONTROL,))}
    final = {e: report(final_files(args, jobs, final_runs[e]), results / e / "final")
             for e in FINAL_EXPERIMENTS} if args.final_episodes else {}
    online_plot = plot_online_curves(jobs, results / "claim3b_env_steps.png")
    if reports["claim3a_tried"]:
        plot_finetune_variants(args, jobs, results / "claim3a_tried" / "variants.png")
    if table:
        plot_data(table, results / "data_checkpoints.png")
        (results / "data.json").write_text(json.dumps(
            {g: {c: {"episodes": s["episodes"], "steps": s["steps"],
                     "mean_return": float(np.mean(s["returns"])) if s["returns"] else None}
                 for c, s in e["checkpoints"].items()} for g, e in table.items()}, indent=1))

    verdicts = []
    c1 = reports["claim1"]
    verdicts.append(verdict(iqm(c1, SCALED_QL_M), iqm(c1, "data, ids 0-1"), other_is_data=True,
                            claim="Claim 1: Scaled QL beats the behaviour policy (ids 0-1)"))
    verdicts.append(verdict(iqm(c1, SCALED_QL_M), iqm(c1, "BC M"), other_is_data=False,
                            claim="Claim 1: Scaled QL beats BC at the same size"))
    verdicts.append(verdict(iqm(c1, SCALED_QL_M), iqm(c1, "C51 M"), other_is_data=False,
                            claim="Claim 1: Scaled QL beats C51 without CQL"))
    c1n = reports["claim1_near_optimal"]
    verdicts.append(verdict(iqm(c1n, near_label), iqm(c1n, "data, ids 0-9"), other_is_data=True,
                            claim="Claim 1, near-optimal: Scaled QL beats the behaviour "
                                  "policy (ids 0-9)"))
    c2 = reports["claim2"]
    points = [(label, group(c2, label)["num_params"], iqm(c2, label)) for label in size_labels
              if iqm(c2, label) is not None and group(c2, label)["num_params"]]
    verdicts.append(scaling_verdict(points))
    c3a, c3b = reports["claim3a"], reports["claim3b"]
    c3_pairs = claim3_pairs(args, labels_3a, labels_3b, paper_3b)
    verdicts += [pair_verdict(reports, pair) for pair in c3_pairs[:3]]

    tried_lines = tried_verdicts(args, reports["claim1_tried"], jobs)
    c2p, c3bp = reports["claim2_cql_0_1"], reports["claim3b_cql_0_1"]
    paper_points = [(label, group(c2p, label)["num_params"], iqm(c2p, label))
                    for label in paper_sizes
                    if iqm(c2p, label) is not None and group(c2p, label)["num_params"]]
    paper_claim2 = scaling_verdict(paper_points, claim=f"Claim 2 at CQL {PAPER_CQL:g} (Scaled "
                                                       "QL improves with model size)")[1]
    paper_claim3b = pair_verdict(reports, c3_pairs[3])[1]
    control_pair = ("claim3a", labels_3a[2], FINAL_CONTROL,
                    f"Claim 3a control: the frozen pre-trained torso beats the frozen random "
                    f"torso on {HELD_OUT_GAME.split('/')[-1]}")
    final_lines = final_verdicts(args, final, [*c3_pairs, control_pair])
    paper_later = paper_cql_later_verdicts(args, jobs, c2p, paper_sizes, paper_3b, online)
    paper_lines = [*[text for text in tried_lines if text.startswith(PAPER_CQL_LABEL)],
                   paper_claim2, *paper_later[:1], paper_claim3b, *paper_later[1:]]
    near_lines = near_tried_verdicts(args, c1n, jobs)
    finetune_lines = finetune_tried_verdicts(args, reports["claim3a_tried"], jobs)
    other_lines = {experiment: other_game_verdicts(reports[experiment], game)
                   + other_game_later_verdict(args, jobs, experiment)
                   for experiment, game in OTHER_HELD_OUT.items()}
    seen_lines = seen_game_verdicts(reports["claim3a_seen_game"])
    follow_lines = {f.experiment: follow_up_verdicts(args, f, reports[f.experiment])
                    for f in FOLLOW_UPS}
    control_lines = (random_torso_verdicts(reports["claim3a_tried"])
                     if any(iqm(reports["claim3a_tried"], finetune_label(RANDOM_TORSO[0], v))
                            for v in RANDOM_TORSO_SETTINGS) else [])
    promoted, combined = (tuple(finetune_label(s, v) for v in variants
                                for s in ("pre-trained", "frozen torso"))
                          for variants in (FINETUNE_TRIED_WITH_ALL_SEEDS, FINETUNE_TRIED_COMBINED))
    promoted_lines, combined_lines = ([text for text in finetune_lines if text.startswith(
        tuple(f"Tried: {label} " for label in labels))] for labels in (promoted, combined))
    done = sum(job_state(j) == "done" for j in jobs)
    core = [j for j in jobs if is_core(args, j)]
    core_done = sum(job_state(j) == "done" for j in core)
    net = sizes(args)
    every = _every(args.steps, args.evals)
    near_seeds = args.seeds if args.near_optimal_seeds is None else args.near_optimal_seeds
    lines = [
        "# Results: the paper's three claims at MinAtar scale",
        "",
        f"Generated by `scripts/study.py` (`make study`) on {datetime.date.today()} from the run "
        f"directories under `{_rel(out)}/`; machine: {platform.machine()}, {os.cpu_count()} "
        f"cores, {platform.platform()}, no accelerator.  {done} of {len(jobs)} runs are done "
        f"({core_done} of the {len(core)} runs of the issue's design, which `make study` runs; "
        "`make study-all` runs every experiment)"
        + ("." if done == len(jobs) else "; the runs still missing are listed at the end, and "
           "every number below is over the runs that are done."),
        "",
        *archived_pages(docs),
        "## Verdicts",
        "",
        "The rule: a claim is **reproduced** only when the lower end of the claimed-better "
        "method's 95% CI of the IQM clears the comparison: the behaviour policy's IQM (the "
        "data's own episodes, one number), or another method's upper CI end.  Otherwise it is "
        "**not reproduced**, with the numbers.  IQM: interquartile mean of the "
        "DQN-normalized final scores over runs x games, 95% stratified-bootstrap CI (2,000 "
        "repetitions, seed 0; docs/EVALUATION.md).",
        *([] if done == len(jobs) else [
            "",
            f"**Provisional: {done} of {len(jobs)} runs are done.**  A verdict over fewer seeds "
            "than planned is not a conclusion: a method with one run has a CI of zero width, "
            "so its 'reproduced' or 'not reproduced' can flip as seeds arrive."]
          if core_done < len(core) else [
            "",
            f"The design's {len(core)} runs are done; {len(jobs) - done} runs of the other "
            "experiments are not (listed at the end), so a line below over one of them says "
            "**not measured**, and a variant without runs has no line."]),
        "",
        *[f"- {text}" for _, text in verdicts],
        "",
        f"At PAPER.md's default CQL weight {PAPER_CQL:g} instead of the study's "
        f"{args.cql_alpha:g}: claim 1 is the variant `{PAPER_CQL_LABEL}` of what was tried (the "
        "same runs otherwise; chosen after 2 seeds among three weights, so the line over only "
        "the seeds run after that choice is the check that does not reuse them); claims 2 and "
        f"3b were then run again from it (experiments `claim2_cql_0_1`, `claim3b_cql_0_1`, "
        f"{paper_cql_seeds(args)} seeds, {args.seeds} at first: with {args.seeds} both were "
        "undecided, so, as claim 1's comparison with BC, every side got more, and the lines over "
        f"only seeds {args.seeds}-{paper_cql_seeds(args) - 1} are the check that does not reuse "
        "the first; the M size is claim 1's run) and claim 3a's is the variant `from "
        f"{PAPER_CQL_SUFFIX}` below:",
        "",
        *[f"- {text}" for text in paper_lines],
        "",
        *([] if not near_lines else [
            "Claim 1 on the near-optimal split with twice the steps (tried when the curves "
            "were still rising at 12,000; 2 seeds first, then the experiment's):", "",
            *[f"- {text}" for text in near_lines], ""]),
        *([] if not promoted_lines else [
            "Claim 3a with the variants of fine-tuning that cleared from scratch with "
            f"{args.tried_seeds} seeds (then run with {args.seeds}; the lines over only the "
            "seeds run after that choice do not reuse them):", "",
            *[f"- {text}" for text in promoted_lines], ""]),
        *([] if not combined_lines else [
            "Claim 3a with two of them together, chosen after seeing both (so not an "
            f"independent test of either; {args.seeds} seeds from the start):", "",
            *[f"- {text}" for text in combined_lines], ""]),
        *([] if not control_lines else [
            "Claim 3a's random-features control (declared before it ran, after the frozen "
            "pre-trained torso was the only start to clear from scratch): the head on the same "
            f"architecture's random, frozen torso ({args.seeds} seeds), against each frozen "
            "pre-trained torso of its settings, then against from scratch:", "",
            *[f"- {text}" for text in control_lines], ""]),
        *other_game_summary(reports, other_lines, "claim3a_second_game", "that control"),
        *([] if not any(iqm(reports["claim3a_seen_game"], finetune_label(s, SEEN_VARIANT, g))
                        for g in SEEN_GAMES for s in SEEN_STARTS) else [
            "Claim 3a's positive control (declared before it ran, after claim 3a failed on "
            "both held-out games): the same fine-tuning from a network that saw the game in "
            "pre-training, with a fresh head:", "",
            *[f"- {text}" for text in seen_lines], ""]),
        *other_game_summary(reports, other_lines, "claim3a_third_game", "the positive control"),
        *(line for f in FOLLOW_UPS if iqm(reports[f.experiment], follow_up_labels(f)[-2])
          for line in (f"Claim 3a {follow_up_text(args, f, f.title)} (declared before it ran, "
                       f"{follow_up_text(args, f, f.because)}):", "",
                       *[f"- {text}" for text in follow_lines[f.experiment]], "")),
        *other_game_summary(reports, other_lines, "claim3a_fourth_game",
                            "Breakout at size L and on 1% of its episodes"),
        *([] if not final_lines else [
            f"Claim 3 read with {args.final_episodes} episodes per final policy (stage "
            "`final`: each fine-tuning run's final checkpoint, the policy its last round read "
            f"with {args.eval_episodes} episodes, plays {args.final_episodes} episodes with "
            "the rounds' settings, seeded with the run's seed.  Added on 2026-11-29, after "
            f"claim 3b's verdicts at {args.eval_episodes} episodes were seen to turn on which "
            "round was read, so a closer reading of the same policies, not a new test):", "",
            *[f"- {text}" for text in final_lines], ""]),
    ]
    lines += design_section(args, counts, net, every, near_seeds)
    lines += data_section(args, out, table)
    lines += ["## Claim 1: offline Q-learning beats the data and imitation", ""]
    if c1:
        lines += [f"Sub-optimal split (checkpoint ids {SUBOPTIMAL[0]}-{SUBOPTIMAL[1]}) of the "
                  f"four games; final step {args.steps:,}.  Returns are mean episode returns "
                  "at the final evaluation (mean over seeds); the data row is the split's "
                  "logged episodes.", "",
                  *_table_rows(c1, ("data, ids 0-1", *claim1_labels), PRETRAIN_GAMES), "",
                  *[f"- {t}" for _, t in verdicts[:3]],
                  *_improvement_lines(c1, SCALED_QL_M), "",
                  *_figures(results, "claim1", ("learning_curves_iqm", "learning_curves_games",
                                       "performance_profiles", "probability_of_improvement")),
                  "", f"Report: [results/claim1/report.md](results/claim1/report.md).", ""]
    else:
        lines += ["(no run done yet)", ""]
    lines += ["### On the near-optimal split (all checkpoint ids)", ""]
    if c1n:
        shown = tuple(l for l in ("data, ids 0-9", near_label, *near_tried_labels)
                      if group(c1n, l))
        lines += [*_table_rows(c1n, shown, PRETRAIN_GAMES), "", f"- {verdicts[3][1]}",
                  *[f"- {text}" for text in near_lines], "",
                  *_figures(results, "claim1_near_optimal", ("learning_curves_iqm",)), ""]
    else:
        lines += ["(no run done yet)", ""]
    lines += ["## Claim 2: Scaled QL improves with model size", ""]
    if c2:
        lines += ["| size | network (width, blocks, feed-forward) | parameters (run.num_params) "
                  "| torso parameters | seeds | IQM [95% CI] |", "|---|---|---:|---:|---:|---:|"]
        for key, label in zip(("S", "M", "L"), size_labels):
            g = group(c2, label)
            width, blocks, ff = net[key]
            lines.append(f"| {label} | {width:g}, {blocks}, {ff} | "
                         f"{counts[key]['total_used']:,} | {counts[key]['torso']:,} | "
                         f"{len(g['seeds']) if g else 0} | {_fmt(iqm(c2, label))} |")
        lines += ["", f"- {verdicts[4][1]}", *_improvement_lines(c2, "Scaled QL L"), "",
                  *_figures(results, "claim2", ("scaling", "learning_curves_iqm")), ""]
    else:
        lines += ["(no run done yet)", ""]
    lines += ["## Claim 3: the pre-trained network transfers", "",
              f"### (a) Offline fine-tuning to the held-out {HELD_OUT_GAME}", ""]
    if c3a:
        lines += [*_table_rows(c3a, labels_3a, (HELD_OUT_GAME,)), "",
                  *[f"- {t}" for _, t in verdicts[5:7]],
                  *_improvement_lines(c3a, labels_3a[0]), "",
                  *final_table(args, final.get("claim3a"), (*labels_3a, FINAL_CONTROL),
                               (HELD_OUT_GAME,)),
                  *_figures(results, "claim3a", ("learning_curves_iqm",)), "",
                  "What was tried with fine-tuning when this did not reproduce: "
                  "[Claim 3a: what was tried](#claim-3a-what-was-tried).", ""]
    else:
        lines += ["(no run done yet)", ""]
    lines += [f"### (b) Online fine-tuning on {args.online_game} with difficulty ramping", ""]
    if c3b:
        lines += [*_table_rows(c3b, labels_3b, (args.online_game,)), "",
                  f"- {verdicts[7][1]}", *_improvement_lines(c3b, labels_3b[0]), "",
                  *final_table(args, final.get("claim3b"), labels_3b, (args.online_game,))]
        if online_plot:
            lines += ["Learning curves over environment steps (each run's "
                      "`learning_curve.csv`):", "",
                      "![online curves](results/claim3b_env_steps.png)", ""]
    else:
        lines += ["(no run done yet)", ""]
    lines += tried_section(args, reports["claim1_tried"], tried_labels, tried_lines, results)
    lines += finetune_tried_section(args, reports["claim3a_tried"], labels_3a_tried,
                                    finetune_lines, results)
    lines += paper_cql_section(args, c2p, c3bp, paper_sizes, paper_3b,
                               (paper_claim2, paper_claim3b), paper_later, counts, results)
    lines += other_game_section(args, "claim3a_second_game", reports, labels_other,
                                other_lines, results)
    lines += seen_game_section(args, reports["claim3a_seen_game"], seen_lines, results)
    lines += other_game_section(args, "claim3a_third_game", reports, labels_other, other_lines,
                                results)
    for f in FOLLOW_UPS:
        lines += follow_up_section(args, f, reports[f.experiment], follow_lines[f.experiment],
                                   results)
    lines += other_game_section(args, "claim3a_fourth_game", reports, labels_other, other_lines,
                                results)
    lines += pixels_section(out)
    lines += time_section(args, jobs, attempts, collection_wall_time(out)[0])
    lines += commands_section(args, out, docs, jobs, report_runs)
    lines += ["## Previous ALE-scale study", "",
              "Before MinAtar, this page held an ALE-scale study (Nature CNN torsos, 20,000 "
              "logged online-C51 steps per game, 2,000 SGD steps, 2 seeds); at that scale none "
              "of the offline claims reproduced (only the online transfer did, on one game "
              "whose seeds all scored the same).  It is in the git history of this file "
              "(`git log -- docs/RESULTS.md`).", ""]
    path = docs / "RESULTS.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def archived_pages(docs: pathlib.Path) -> list[str]:
    """A line linking the pages of other machines' studies kept under DOCS/machine_*/ (their
    runs gone, their variants perhaps not run here), if any."""
    pages = sorted(docs.glob("machine_*/RESULTS.md"))
    if not pages:
        return []
    links = ", ".join(f"[{p.parent.name.replace('_', ' ')}]({p.parent.name}/RESULTS.md)"
                      for p in pages)
    return [f"Other machines' pages, generated from their own runs (kept as they were; "
            f"[REPLICATION.md](REPLICATION.md) compares the machines): {links}.", ""]

def claim3_pairs(args, labels_3a, labels_3b, paper_3b) -> list[tuple[str, str, str, str]]:
    """Claim 3's comparisons as (experiment, better label, other label, claim): 3a's two and
    3b's at the study's CQL weight, then 3b's at PAPER.md's."""
    held, online = HELD_OUT_GAME.split("/")[-1], args.online_game.split("/")[-1]
    ramping = f"pre-trained beats from scratch, online on {online} with difficulty ramping"
    return [("claim3a", labels_3a[0], labels_3a[1],
             f"Claim 3a: pre-trained beats from scratch, offline on {held}"),
            ("claim3a", labels_3a[2], labels_3a[1],
             f"Claim 3a: the frozen pre-trained torso beats from scratch on {held}"),
            ("claim3b", *labels_3b, f"Claim 3b: {ramping}"),
            ("claim3b_cql_0_1", *paper_3b, f"Claim 3b at CQL {PAPER_CQL:g}: {ramping}")]


def pair_verdict(reports: dict, pair: tuple[str, str, str, str]) -> tuple[bool | None, str]:
    """`verdict` of one of `claim3_pairs` over `reports` (experiment -> summary)."""
    experiment, better, other, claim = pair
    summary = reports.get(experiment)
    return verdict(iqm(summary, better), iqm(summary, other), other_is_data=False, claim=claim)


def final_verdicts(args, final: dict, pairs) -> list[str]:
    """Claim 3's verdicts over the final reading (`final`: experiment -> summary of its
    FINAL_FILEs): `pairs` (claim3_pairs), each other held-out game's and each follow-up's;
    only the comparisons with both sides read."""
    lines = [pair_verdict(final, pair) for pair in pairs]
    lines += [(True, text) for experiment, game in OTHER_HELD_OUT.items()
              for text in other_game_verdicts(final.get(experiment), game)]
    lines += [(True, text) for f in FOLLOW_UPS
              for text in follow_up_verdicts(args, f, final.get(f.experiment))]
    # Each claim named apart from its rounds' verdict (scripts/compare_verdicts.py keys on it).
    suffix = f", {args.final_episodes} episodes per final policy: **"
    return [text.replace(": **", suffix, 1) for _, text in lines
            if "**not measured**" not in text]


def final_table(args, summary: dict | None, labels, games) -> list[str]:
    """The final reading's table of `labels` (nothing when it has none of them)."""
    if not any(group(summary, label) for label in labels):
        return []
    return [f"The final policies read with {args.final_episodes} episodes each (stage "
            "`final`; verdicts at the top of the page):", "",
            *_table_rows(summary, labels, games), ""]

def _rel(path: pathlib.Path) -> str:
    try:
        return str(pathlib.Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def design_section(args, counts, net, every, near_seeds) -> list[str]:
    width, blocks, ff = net["M"]
    return [
        "## Design",
        "",
        f"- **Games.** Five MinAtar games (Young & Tian 2019; docs/ENVIRONMENTS.md): "
        f"pre-training on {', '.join(PRETRAIN_GAMES)}; **{HELD_OUT_GAME} is held out** for "
        "claim 3a.  Freeway is the game whose sub-optimal split carries no signal for claim 1: "
        "its logged agent only starts crossing the road after the split (mean returns 0.42 and "
        "0.58 at checkpoint ids 0 and 1, 37 at id 9), while its full data makes a meaningful "
        "small dataset to fine-tune on.  The catalogue's held-out MinAtar game "
        "(`pool == 'held_out'` in `scaled_ql/environments/games.py`, the counterpart of the "
        "paper's split) is SpaceInvaders, but holding it out left claim 1 with one informative "
        "game of four (a first pass: every method within noise of the data on Freeway, Asterix "
        "and Seaquest), while `make demo` shows Scaled QL's gain on SpaceInvaders' split.",
        f"- **Data.** One online C51 agent per game (`default_online_agent('minatar')`: "
        f"MinAtar's DQN network, Adam 2.5e-4, 3-step C51, target every 1,000 updates) learns "
        f"for {args.env_steps:,} environment steps while every step is logged "
        "(`rlu_minatar_checkpoints_ordered`, `checkpoint_id` = the tenth of training, sticky "
        f"actions 0.1).  **Sub-optimal split** = ids {SUBOPTIMAL[0]}-{SUBOPTIMAL[1]} (the first "
        "20% of training, as the paper's first 20% of DQN Replay); **near-optimal** = all ids.",
        f"- **Network (claim 1, size M).** The recipe at MinAtar size: `minatar_resnet` torso "
        f"(3x3 stride-1 stem, {blocks} residual block(s) with GroupNorm, {args.num_groups} "
        f"groups, width {width:g} = {round(32 * width)} channels), learned spatial embedding, a "
        f"{ff}-unit shared layer, feature normalization, one C51 head (51 atoms) per game: "
        f"{counts['M']['total_used']:,} parameters ({counts['M']['torso']:,} in the torso).  "
        "Scaled QL, C51 and BC all use it.",
        f"- **Training.** Batch {args.batch_size}, Adam {args.learning_rate:g}, target update "
        f"every {args.target_update_period} steps, {args.n_step}-step returns, "
        f"{args.steps:,} SGD steps, evaluated every {every:,}, feature normalization "
        f"{'on' if args.feature_norm else FEATURE_NORM_OFF_BECAUSE}"
        f".  Scaled QL = C51 + CQL weight "
        f"{args.cql_alpha:g}; C51 = the same with CQL 0; BC = the same network trained by "
        f"cross-entropy on the data's actions.  {args.seeds} seed(s) per configuration "
        f"({near_seeds} on the near-optimal split), except claim 1's comparison with BC: "
        f"Scaled QL M, BC M and the CQL 0.1 variant have {claim1_seeds(args)} (with 5 the "
        "intervals of Scaled QL and BC overlapped; more seeds narrow both).  Claim 2 uses "
        f"seeds 0-{args.seeds - 1} of every size.",
        f"- **Sizes (claim 2).** On 2 CPU cores the convolutions dominate a step, so the "
        "parameter count grows mainly through the width of the shared layer and the heads, "
        "with cheap convolutions: "
        + ", ".join(f"{k} = width {w:g}, {b} block(s), feed-forward {f} "
                    f"({counts[k]['total_used']:,} parameters, torso {counts[k]['torso']:,})"
                    for k, (w, b, f) in net.items())
        + f"; L/S = {counts['L']['total_used'] / counts['S']['total_used']:.1f}x parameters "
        f"({counts['L']['torso'] / counts['S']['torso']:.1f}x in the torso).  M is claim 1's "
        "Scaled QL (the same runs).",
        f"- **Claim 3a.** `scaled-ql finetune-offline` from claim 1's Scaled QL seed 0 (its "
        f"step-{args.steps:,} checkpoint) to {HELD_OUT_GAME} on a small dataset: "
        f"{args.finetune_fraction:.0%} of the episodes of checkpoint ids "
        f"{args.finetune_checkpoints[0]}-{args.finetune_checkpoints[1]} (hash-selected, "
        f"`--episode-fraction`), {args.finetune_steps:,} SGD steps with the pre-training "
        "learner settings; pre-trained (torso copied, new head) vs from scratch (same "
        f"architecture) vs frozen torso (head only); {args.seeds} seed(s) of fine-tuning.",
        f"- **Claim 3b.** `scaled-ql finetune-online` on {args.online_game} with MinAtar's "
        f"difficulty ramping (`--difficulty 1`; a pre-training game whose variant ramps), "
        f"{args.online_env_steps:,} environment steps (one learner step of batch "
        f"{args.batch_size} per {args.batch_size // ONLINE_SAMPLES_PER_INSERT} environment "
        "steps, online CQL 0.01, epsilon 0.01), pre-trained (its own head) vs from scratch, "
        f"{args.seeds} seed(s).",
        f"- **Evaluation.** {args.eval_episodes} episodes per game per round, capped at "
        f"{args.eval_max_frames:,} steps, epsilon 0.001, sticky actions 0.1; scores "
        "DQN-normalized (0 = random, 1 = Young & Tian's DQN)."
        + (f"  Claim 3's fine-tuned final policies are also read with {args.final_episodes} "
           "episodes each (stage `final`, the same settings, the run's seed)."
           if args.final_episodes else ""),
        "",
    ]


def data_section(args, out: pathlib.Path, table: dict) -> list[str]:
    lines = ["## The data", ""]
    if not table:
        return lines + ["(no dataset complete yet)", ""]
    seconds, source = collection_wall_time(out)
    finished = ", ".join(
        f"{g.split('/')[-1]} {datetime.datetime.fromtimestamp(e['finished']):%H:%M}"
        for g, e in sorted(table.items(), key=lambda x: x[1]["finished"]))
    lines += [f"{args.env_steps:,} environment steps per game; collection wall time "
              + (f"{_hours(seconds)} ({source})" if seconds else "unknown (not recorded)")
              + f"; datasets finished at {finished} (dataset_info.json times).  Each game's "
              f"seed is the one `scaled-ql collect --games {','.join(STUDY_GAMES)}` gives it, "
              "so the one-game commands at the end make the same data.", "",
              "Mean return of the logged episodes per checkpoint id (episodes in brackets):",
              "", "| game | steps | " + " | ".join(f"id {i}" for i in range(10))
              + " | ids 0-1 | all |", "|---|---:|" + "---:|" * 12]
    for game, entry in table.items():
        cells = []
        for i in range(10):
            s = entry["checkpoints"].get(str(i))
            cells.append(f"{sum(s['returns']) / len(s['returns']):.2f} ({s['episodes']})"
                         if s and s["returns"] else "-")
        sub, everything = split_returns(entry, SUBOPTIMAL), split_returns(entry, NEAR_OPTIMAL)
        steps = sum(s["steps"] for s in entry["checkpoints"].values())
        lines.append(f"| {game}{' (held out)' if game == HELD_OUT_GAME else ''} | {steps:,} | "
                     + " | ".join(cells) + f" | {sum(sub) / max(1, len(sub)):.2f} | "
                     f"{sum(everything) / max(1, len(everything)):.2f} |")
    missing = [g for g in STUDY_GAMES if g not in table]
    if missing:
        lines += ["", f"Not collected yet: {', '.join(missing)}."]
    return lines + ["", "![data](results/data_checkpoints.png)", ""]


def _analysis_of_runs(run_dirs: list[pathlib.Path]):
    """`scaled-ql report`'s analysis of one configuration's runs (the same bootstrap
    repetitions and seed), without writing a report; None without a final evaluation common
    to all of them."""
    from scaled_ql.evaluation import stats
    from scaled_ql.evaluation.report import analyze_group
    from scaled_ql.evaluation.runs import group_runs, load_runs

    if not run_dirs:
        return None
    groups = [g for g in group_runs(load_runs(run_dirs)) if g.final_step is not None]
    return analyze_group(groups[0], reps=stats.DEFAULT_REPS, seed=0) if len(groups) == 1 else None


def iqm_of_runs(run_dirs: list[pathlib.Path]) -> dict | None:
    """The IQM interval of one configuration's final scores, as its report gives it."""
    from scaled_ql.evaluation import stats

    analysis = _analysis_of_runs(run_dirs)
    interval = analysis and analysis.aggregates.get(stats.IQM)
    return dataclasses.asdict(interval) if interval else None


def iqm_curve_of_runs(run_dirs: list[pathlib.Path]):
    """The IQM learning curve (`stats.Curve`) of one configuration's runs, as its report's."""
    analysis = _analysis_of_runs(run_dirs)
    return analysis.curve if analysis else None


def tried_verdicts(args, summary: dict | None, jobs: list[Job]) -> list[str]:
    """The variants of claim 1 against the data, BC (at the same steps) and, at --steps, C51;
    a variant in TRIED_WITH_ALL_SEEDS also over only its seeds from --tried-seeds on, those run
    after it was chosen."""
    lines = []
    for label, method, _, factor in TRIED:
        if iqm(summary, label) is None:
            continue
        bc = "BC M" if not factor else next(
            (l for l, m, _, f in TRIED if m == "bc" and f == factor), "BC M")
        others = [("data, ids 0-1", True)]
        if method != "bc":
            others += [(bc, False)] + ([("C51 M", False)] if not factor else [])
        for other, is_data in others:
            _, text = verdict(iqm(summary, label), iqm(summary, other), other_is_data=is_data,
                              claim=f"{label} beats {'the behaviour policy' if is_data else other}")
            lines.append(text)
        later = [j for j in jobs if j.label == label and j.seed >= args.tried_seeds
                 and job_state(j) == "done"]
        if label in TRIED_WITH_ALL_SEEDS and later:
            seeds = f"seeds {later[0].seed}-{later[-1].seed}"
            _, text = verdict(iqm_of_runs([j.run_dir for j in later]), iqm(summary, bc),
                              other_is_data=False,
                              claim=f"{label}, only its {len(later)} seeds run after the choice "
                                    f"({seeds}), beats {bc}")
            lines.append(text)
    return lines


def near_tried_verdicts(args, summary: dict | None, jobs: list[Job]) -> list[str]:
    """The near-optimal split's variants against its data, over all their seeds and over only
    the seeds run after the first --tried-seeds cleared it."""
    lines = []
    for label, factor in NEAR_OPTIMAL_TRIED:
        if iqm(summary, label) is None:
            continue
        done = [j for j in jobs if j.label == label and job_state(j) == "done"]
        later = [j for j in done if j.seed >= args.tried_seeds]
        steps = f"{tried_steps(args, factor):,} SGD steps"
        checks = [(f"{len(done)} seeds", iqm(summary, label))]
        if later:  # (not computed before its seeds exist: no runs, no IQM)
            checks.append((f"only its {len(later)} seeds run after the first "
                           f"{args.tried_seeds} (seeds {later[0].seed}-{later[-1].seed})",
                           iqm_of_runs([j.run_dir for j in later])))
        for which, interval in checks:
            _, text = verdict(interval, iqm(summary, "data, ids 0-9"), other_is_data=True,
                              claim=f"Tried: {label} ({steps}, {which}) beats the behaviour "
                                    "policy")
            lines.append(text)
    return lines


def tried_section(args, summary: dict | None, tried_labels, tried_lines: list[str],
                  results: pathlib.Path) -> list[str]:
    """Claim 1's investigation: the variants of Scaled QL M against the data and BC."""
    half = tried_steps(args, 0.5)
    lines = ["## Claim 1: what was tried", "",
             f"Claim 1 did not reproduce against the data and BC in the study's first pass, "
             f"{half:,} SGD steps with 5 seeds; Scaled QL's curves were still rising.  Rerun "
             "with one setting changed at a time (2 seeds each), twice the steps reproduced "
             "it against both with 2 seeds, and the study now trains for "
             f"{args.steps:,} steps (with 5 seeds it held against the data; against BC the "
             "intervals overlapped, so Scaled QL M and BC M now have "
             f"{claim1_seeds(args)}: claim 1 above).  The variants, "
             f"{args.tried_seeds} seed(s) each except {', '.join(TRIED_WITH_ALL_SEEDS)} "
             f"({claim1_seeds(args)}: with {args.tried_seeds} it beat BC's interval, so it "
             "runs with claim 1's seeds; experiment `claim1_tried`): a weaker and a "
             f"stronger CQL weight (the default is {args.cql_alpha:g}), and Scaled QL and BC at "
             f"the first pass's {half:,} steps (evaluated every "
             f"{_every(args.steps, args.evals):,} steps as the others, so their curves are the "
             "first half of theirs).  Earlier single-seed tries on the demo's data "
             "(docs/DEMO.md): Adam 1e-3 instead of 3e-4 and no feature normalization helped "
             "(now the study's settings); a target update every 100 steps instead of 500 and "
             "CQL 0.1 did not.", ""]
    if not summary or not any(group(summary, label) for label in tried_labels):
        return lines + ["(no run done yet)", ""]
    shown = ("data, ids 0-1", SCALED_QL_M, "C51 M", "BC M", *tried_labels)
    lines += [*_table_rows(summary, tuple(l for l in shown if group(summary, l)),
                           PRETRAIN_GAMES), ""]
    lines += [f"- {text}" for text in tried_lines]
    return lines + ["", *_figures(results, "claim1_tried", ("learning_curves_iqm",)),
                    "", "Report: [results/claim1_tried/report.md](results/claim1_tried/report.md).",
                    ""]


def finetune_tried_verdicts(args, summary: dict | None, jobs: list[Job]) -> list[str]:
    """Claim 3a's variants: pre-trained and frozen torso against the variant's from scratch (the
    study's own when only the base changes), over all their seeds, and for a variant in
    FINETUNE_TRIED_WITH_ALL_SEEDS also over only the seeds from --tried-seeds on (both sides)."""
    lines = []
    for variant, changes in FINETUNE_TRIED:
        scratch = finetune_label("from scratch", scratch_variant(variant, changes))
        for start in ("pre-trained", "frozen torso"):
            label = finetune_label(start, variant)
            if iqm(summary, label) is None:
                continue
            seeds = len(group(summary, label)["seeds"])
            checks = [(f"{seeds} seeds", iqm(summary, label), iqm(summary, scratch))]
            later = {name: [j.run_dir for j in jobs if j.label == name
                            and j.seed >= args.tried_seeds and job_state(j) == "done"]
                     for name in (label, scratch)}
            if variant in FINETUNE_TRIED_WITH_ALL_SEEDS and all(later.values()):
                checks.append((f"only the {len(later[label])} seeds run after the choice",
                               iqm_of_runs(later[label]), iqm_of_runs(later[scratch])))
            for which, better, other in checks:
                _, text = verdict(better, other, other_is_data=False,
                                  claim=f"Tried: {label} ({which}) beats {scratch}")
                lines.append(text)
    return lines


def random_torso_verdicts(summary: dict | None) -> list[str]:
    """The random-features control of claim 3a: every frozen pre-trained torso against the
    random, frozen torso of its settings, then each random torso against its from scratch."""
    lines = []
    for variant in (None, *(v for v, _ in FINETUNE_TRIED)):
        setting = random_torso_setting(variant)
        frozen = finetune_label("frozen torso", variant)
        if setting is False or iqm(summary, frozen) is None:
            continue
        random = finetune_label(RANDOM_TORSO[0], setting)
        lines.append(verdict(iqm(summary, frozen), iqm(summary, random), other_is_data=False,
                             claim=f"Control: {frozen} beats {random}")[1])
    for setting in RANDOM_TORSO_SETTINGS:
        random, scratch = (finetune_label(start, setting)
                           for start in (RANDOM_TORSO[0], "from scratch"))
        lines.append(verdict(iqm(summary, random), iqm(summary, scratch), other_is_data=False,
                             claim=f"Control: {random} beats {scratch}")[1])
    return lines


def other_game_verdicts(summary: dict | None, game: str) -> list[str]:
    """Claim 3a on another held-out `game` (OTHER_HELD_OUT): pre-trained and the frozen
    pre-trained torso against from scratch, and the frozen torso against the frozen random
    one."""
    label = {start: finetune_label(start, game=game) for start in OTHER_STARTS}
    claim = f"Claim 3a on {game.split('/')[-1]}: "
    return [verdict(iqm(summary, label[better]), iqm(summary, label[other]),
                    other_is_data=False, claim=f"{claim}{text}")[1]
            for better, other, text in (
                ("pre-trained", "from scratch", "pre-trained beats from scratch"),
                ("frozen torso", "from scratch", "the frozen pre-trained torso beats from "
                                                 "scratch"),
                ("frozen torso", RANDOM_TORSO[0], "the frozen pre-trained torso beats the "
                                                  "frozen random torso"))]


def other_game_later_verdict(args, jobs: list[Job], experiment: str) -> list[str]:
    """Pre-trained against from scratch over only the seeds run after 5 were found undecided
    (--seeds to claim1_seeds), for the experiments of `OTHER_MORE_SEEDS`; none else or before
    any such seed is done."""
    if experiment not in OTHER_MORE_SEEDS or claim1_seeds(args) <= args.seeds:
        return []
    game = OTHER_HELD_OUT[experiment]

    def later(start):
        label = finetune_label(start, game=game)
        return [j.run_dir for j in jobs if j.label == label and job_state(j) == "done"
                and args.seeds <= j.seed < claim1_seeds(args)]

    if not later("pre-trained") or not later("from scratch"):
        return []
    return [verdict(iqm_of_runs(later("pre-trained")), iqm_of_runs(later("from scratch")),
                    other_is_data=False,
                    claim=f"Claim 3a on {game.split('/')[-1]}, only seeds {args.seeds}-"
                          f"{claim1_seeds(args) - 1} of both: pre-trained beats from scratch")[1]]


def _ordinal(experiment: str) -> str:
    """'second', 'third': the held-out game's place after HELD_OUT_GAME."""
    return ("second", "third", "fourth", "fifth")[list(OTHER_HELD_OUT).index(experiment)]


def other_game_summary(reports: dict, other_lines: dict, experiment: str,
                       after: str) -> list[str]:
    """The page's opening lines of claim 3a on another held-out game (none without runs)."""
    if not reports[experiment]:
        return []
    return [f"Claim 3a on a {_ordinal(experiment)} held-out game, "
            f"{OTHER_HELD_OUT[experiment]} (declared before it ran, after {after}; the network "
            "pre-trained without it):", "", *[f"- {text}" for text in other_lines[experiment]],
            ""]


def seen_game_labels(game: str) -> dict[str, str]:
    """The configurations of the positive control on `game`, by role: its from scratch and
    frozen random torso (the study's settings), the held-out starts from a CQL 0.1 network
    (`SEEN_HELD_OUT_VARIANT`) and the starts from the network that saw the game."""
    held = SEEN_HELD_OUT_VARIANT[game]
    return {"from scratch": finetune_label("from scratch", game=game),
            RANDOM_TORSO[0]: finetune_label(RANDOM_TORSO[0], game=game),
            **{f"{start}, held out": finetune_label(start, held, game) for start in SEEN_STARTS},
            **{f"{start}, seen": finetune_label(start, SEEN_VARIANT, game)
               for start in SEEN_STARTS}}


def seen_game_verdicts(summary: dict | None) -> list[str]:
    """Claim 3a's positive control: on each of `SEEN_GAMES`, the starts from the network that
    saw the game against from scratch, and its frozen torso against the frozen random one."""
    lines = []
    for game in SEEN_GAMES:
        label = seen_game_labels(game)
        claim = f"Positive control on {game.split('/')[-1]}: "
        lines += [verdict(iqm(summary, label[better]), iqm(summary, label[other]),
                          other_is_data=False, claim=f"{claim}{text}")[1]
                  for better, other, text in (
                      ("pre-trained, seen", "from scratch",
                       f"pre-trained, {SEEN_VARIANT}, beats from scratch"),
                      ("frozen torso, seen", "from scratch",
                       f"the frozen torso, {SEEN_VARIANT}, beats from scratch"),
                      ("frozen torso, seen", RANDOM_TORSO[0],
                       f"the frozen torso, {SEEN_VARIANT}, beats the frozen random torso"))]
    return lines


def seen_game_section(args, summary: dict | None, verdict_lines: list[str],
                      results: pathlib.Path) -> list[str]:
    """Claim 3a's positive control (experiment `claim3a_seen_game`)."""
    games = " and ".join(SEEN_GAMES)
    lines = ["## Claim 3a's positive control: the held-out game seen in pre-training", "",
             "Declared before it ran, after claim 3a had failed on both held-out games: does "
             "this fine-tuning protocol show a pre-trained torso's worth when the torso has "
             f"seen the game?  `{SEEN_BASE}` (Scaled QL M, CQL {PAPER_CQL:g}, seed 0, "
             f"{args.steps:,} SGD steps on the sub-optimal split of all five games) is "
             f"fine-tuned offline to {games} as claim 3a is to a held-out game "
             f"({args.finetune_fraction:.0%} of the episodes of checkpoint ids "
             f"{args.finetune_checkpoints[0]}-{args.finetune_checkpoints[1]}, "
             f"{args.finetune_steps:,} SGD steps) with a fresh head (`--fresh-head`: the "
             "game's own head is not copied, so only the torso differs from the held-out "
             f"case): pre-trained and frozen torso, {args.seeds} seeds each (experiment "
             "`claim3a_seen_game`).  From scratch and the frozen random torso read no "
             "weights: they are each game's claim-3a runs.  The held-out rows are the starts "
             f"from a CQL {PAPER_CQL:g} network that did not see the game.", ""]
    if not summary:
        return lines + ["(no run done yet)", ""]
    for game in SEEN_GAMES:
        lines += [f"{game}:", "", *_table_rows(summary, tuple(seen_game_labels(game).values()),
                                                (game,)), ""]
    return lines + [*[f"- {text}" for text in verdict_lines], "",
                    *_figures(results, "claim3a_seen_game", ("learning_curves_games",)), "",
                    "Report: [results/claim3a_seen_game/report.md]"
                    "(results/claim3a_seen_game/report.md).", ""]


def other_game_section(args, experiment: str, reports: dict, labels: dict,
                       verdict_lines: dict, results: pathlib.Path) -> list[str]:
    """Claim 3a on another held-out game (`OTHER_HELD_OUT[experiment]`)."""
    game = OTHER_HELD_OUT[experiment]
    because = OTHER_HELD_OUT_BECAUSE[experiment].format(held=HELD_OUT_GAME, game=game)
    lines = [f"## Claim 3a on a {_ordinal(experiment)} held-out game: {game}", "",
             f"Declared before it ran, {because}, held out instead.  `{held_out_base(game)}` "
             f"(Scaled QL M, CQL {PAPER_CQL:g}, seed 0, {args.steps:,} SGD steps on the "
             f"sub-optimal split of {', '.join(games_without(game))}) is fine-tuned offline to "
             f"{game} as claim 3a is to {HELD_OUT_GAME}: {args.finetune_fraction:.0%} of its "
             f"episodes of checkpoint ids {args.finetune_checkpoints[0]}-"
             f"{args.finetune_checkpoints[1]}, {args.finetune_steps:,} SGD steps; pre-trained, "
             f"from scratch, frozen torso and the frozen random torso, {args.seeds} seeds each "
             f"(experiment `{experiment}`)."
             + (f"  With {args.seeds} seeds pre-trained was ahead of from scratch without "
                f"clearing its interval, so both then ran {claim1_seeds(args)} (declared before "
                f"seeds {args.seeds}-{claim1_seeds(args) - 1} ran); the table is over all, the "
                "last line over only those." if experiment in OTHER_MORE_SEEDS else "")
             + (f"  Pre-trained and from scratch ran {claim1_seeds(args)} seeds each from the "
                "start, as the follow-ups on Breakout did."
                if experiment in OTHER_SEEDS_FROM_START else ""), ""]
    summary = reports[experiment]
    if not summary:
        return lines + ["(no run done yet)", ""]
    return lines + [*_table_rows(summary, labels[experiment], (game,)), "",
                    *[f"- {text}" for text in verdict_lines[experiment]], "",
                    *_figures(results, experiment, ("learning_curves_iqm",)), "",
                    f"Report: [results/{experiment}/report.md](results/{experiment}/report.md).",
                    ""]


def follow_up_labels(follow: FollowUp) -> tuple[str, ...]:
    """The configurations of a claim-3a `FollowUp`: size M's pre-trained and from scratch on the
    same held-out game at the study's settings (claim3a_third_game's, for comparison), then its
    own."""
    return tuple(finetune_label(start, variant, follow.game)
                 for variant in (None, follow.variant) for start in FOLLOW_UP_STARTS)


def follow_up_verdicts(args, follow: FollowUp, summary: dict | None) -> list[str]:
    """A claim-3a `FollowUp`: its pre-trained against its from scratch."""
    *_, pre, scratch = follow_up_labels(follow)
    return [verdict(iqm(summary, pre), iqm(summary, scratch), other_is_data=False,
                    claim=follow_up_text(args, follow, follow.claim)
                    + ": pre-trained beats from scratch")[1]]


def follow_up_section(args, follow: FollowUp, summary: dict | None, verdict_lines: list[str],
                      results: pathlib.Path) -> list[str]:
    """A claim-3a `FollowUp` on the third held-out game: its table, verdict, the probabilities
    of improvement of each setting's two starts and of from scratch across them, its curves."""
    game, size = follow.game, follow.size
    fraction = follow_up_fraction(args, follow)
    lines = [f"## Claim 3a {follow_up_text(args, follow, follow.title)}", "",
             f"Declared before it ran, {follow_up_text(args, follow, follow.because)}: the same "
             f"test {follow_up_text(args, follow, follow.change)}.  "
             f"`{held_out_base(game, size)}` (seed 0, {args.steps:,} SGD steps on the "
             f"sub-optimal split of {', '.join(games_without(game))}) is fine-tuned offline to "
             f"{game} ({fraction:.0%} of its episodes of every checkpoint id, "
             f"{args.finetune_steps:,} SGD steps): pre-trained and from scratch, both of size "
             f"{size}, {claim1_seeds(args)} seeds each from the start (experiment "
             f"`{follow.experiment}`).  The table also shows size M's two starts at the study's "
             f"settings ({args.finetune_fraction:.0%} of the episodes) where they ran.", ""]
    if not summary:
        return lines + ["(no run done yet)", ""]
    m_pre, m_scratch, pre, scratch = follow_up_labels(follow)
    return lines + [*_table_rows(summary, follow_up_labels(follow), (game,)), "",
                    *[f"- {text}" for text in verdict_lines],
                    *_improvement_lines(summary, pairs=((pre, scratch), (m_pre, m_scratch),
                                                        (m_scratch, scratch))), "",
                    *_figures(results, follow.experiment, ("learning_curves_iqm",)), "",
                    f"Report: [results/{follow.experiment}/report.md]"
                    f"(results/{follow.experiment}/report.md).", ""]


def finetune_tried_section(args, summary: dict | None, tried_labels, tried_lines: list[str],
                           results: pathlib.Path) -> list[str]:
    """Claim 3a's investigation: the variants of fine-tuning against from scratch."""
    held = HELD_OUT_GAME.split("/")[-1]
    lines = ["## Claim 3a: what was tried", "",
             f"Claim 3a did not reproduce with {args.finetune_steps:,} SGD steps on "
             f"{args.finetune_fraction:.0%} of {held}'s episodes: pre-trained and frozen torso "
             "inside from scratch's wide interval.  The variants, declared before they ran, "
             "one setting changed at a time for every start of fine-tuning "
             f"({args.tried_seeds} seed(s) each; experiment `claim3a_tried`): "
             + "; ".join(f"**{v}**" + SINGLE_VARIANT_NOTES.get(v, "")
                         for v, _ in FINETUNE_TRIED if v not in FINETUNE_TRIED_COMBINED)
             + ".  A variant whose pre-trained or frozen-torso IQM is "
             f"above its from scratch's with {args.tried_seeds} seeds runs with {args.seeds}"
             + (f" (promoted: {', '.join(FINETUNE_TRIED_WITH_ALL_SEEDS)})."
                if FINETUNE_TRIED_WITH_ALL_SEEDS else " (none was).")
             + "".join(f"  Then, declared {COMBINED_BECAUSE[v]}, **{v}** together, with "
                       f"{args.seeds} seeds from the start; its from scratch is that of "
                       f"{scratch_variant(v, dict(FINETUNE_TRIED)[v]) or 'the study'}."
                       for v in FINETUNE_TRIED_COMBINED), ""]
    if not summary or not any(group(summary, label) for label in tried_labels):
        return lines + ["(no run done yet)", ""]
    shown = tuple(label for label in (*(finetune_label(s) for s, _ in FINETUNE_STARTS),
                                      *tried_labels) if group(summary, label))
    lines += [*_table_rows(summary, shown, (HELD_OUT_GAME,)), ""]
    lines += [f"- {text}" for text in tried_lines]
    return lines + ["", "IQM learning curves, one panel per setting (95% CI bands):", "",
                    *_figures(results, "claim3a_tried", ("variants",)), "",
                    "Report: [results/claim3a_tried/report.md](results/claim3a_tried/report.md).",
                    ""]


def paper_cql_later_verdicts(args, jobs: list[Job], c2p: dict | None, paper_sizes, paper_3b,
                             online: str) -> list[str]:
    """Claims 2 and 3b at PAPER.md's CQL weight over only the seeds run after their 5-seed
    comparisons were found undecided (--seeds to paper_cql_seeds), every side alike."""
    def later(label):
        return [j.run_dir for j in jobs if j.label == label and job_state(j) == "done"
                and args.seeds <= j.seed < paper_cql_seeds(args)]

    if paper_cql_seeds(args) <= args.seeds:
        return []
    seeds = f"seeds {args.seeds}-{paper_cql_seeds(args) - 1}"
    points = [(label, group(c2p, label)["num_params"], iqm_of_runs(later(label)))
              for label in paper_sizes if c2p and group(c2p, label) and later(label)]
    lines = [scaling_verdict(points, claim=f"Claim 2 at CQL {PAPER_CQL:g}, only {seeds} of "
                                           "every size (Scaled QL improves with model size)")[1]]
    lines.append(verdict(iqm_of_runs(later(paper_3b[0])), iqm_of_runs(later(paper_3b[1])),
                         other_is_data=False,
                         claim=f"Claim 3b at CQL {PAPER_CQL:g}, only {seeds} of both: "
                               f"pre-trained beats from scratch, online on {online} with "
                               "difficulty ramping")[1])
    return lines


def paper_cql_section(args, c2p: dict | None, c3bp: dict | None, paper_sizes, paper_3b,
                      verdict_lines: tuple[str, str], later_lines: list[str], counts: dict,
                      results: pathlib.Path) -> list[str]:
    """Claims 2 and 3b again at PAPER.md's CQL weight (claim 1's lines are with what was
    tried)."""
    more = paper_cql_seeds(args)
    lines = [f"## Claims 2 and 3b at PAPER.md's CQL weight {PAPER_CQL:g}", "",
             f"Claim 1 beat BC only at CQL {PAPER_CQL:g}, so the sizes S and L and the online "
             f"fine-tuning were run again at that weight ({args.seeds} seeds, the study's "
             f"settings otherwise; declared before they ran).  Size M is claim 1's "
             f"`{PAPER_CQL_LABEL}`; online fine-tuning starts from its seed 0, and from scratch "
             f"is claim 3b's own runs (they read no weights).  With {args.seeds} seeds both "
             f"comparisons were undecided (claim 2: L's lower CI end tied S's upper; claim 3b: "
             f"the intervals overlapped), so, as claim 1's comparison with BC, every side then "
             f"ran {more} seeds (declared before seeds {args.seeds}-{more - 1} ran; claim 3b's "
             f"from scratch got them as part of this experiment, and claim 3b at "
             f"{args.cql_alpha:g} keeps its seeds 0-{args.seeds - 1}).  The tables are over all "
             f"{more}; the last lines over only seeds {args.seeds}-{more - 1}.", ""]
    if c2p:
        lines += ["| size | parameters | seeds | IQM [95% CI] |", "|---|---:|---:|---:|"]
        for key, label in zip(("S", "M", "L"), paper_sizes):
            g = group(c2p, label)
            lines.append(f"| {label} | {counts[key]['total_used']:,} | "
                         f"{len(g['seeds']) if g else 0} | {_fmt(iqm(c2p, label))} |")
        lines += ["", f"- {verdict_lines[0]}", *[f"- {t}" for t in later_lines[:1]], "",
                  *_figures(results, "claim2_cql_0_1", ("scaling", "learning_curves_iqm")), ""]
    if c3bp:
        lines += [*_table_rows(c3bp, tuple(l for l in paper_3b if group(c3bp, l)),
                               (args.online_game,)), "",
                  f"- {verdict_lines[1]}", *[f"- {t}" for t in later_lines[1:]],
                  *_improvement_lines(c3bp, paper_3b[0]), "",
                  "Its learning curves are in claim 3b's plot above.", ""]
    if not c2p and not c3bp:
        lines += ["(no run done yet)", ""]
    return lines


def pixels_section(out: pathlib.Path) -> list[str]:
    summary = out / "pixels" / "summary.md"
    state = ("its results are in that page" if summary.exists() else
             f"not run in `{_rel(out)}` yet (stage `pixels`), so that page's results are an "
             "earlier run's")
    return ["## From pixels, on real ALE", "",
            "Offline Scaled QL from 84x84x4 Breakout frames with data from a scripted player "
            "that reads the RAM (issue item 5): [PIXELS.md](PIXELS.md), run by "
            f"`scripts/study_pixels.py` as this study's `pixels` stage; {state}.", "",
            "The same pixels on a borrowed H100 ([PIXELS_GPU.md](PIXELS_GPU.md), "
            "`scripts/gpu_pixels.py`, three sessions of 15 minutes of device time): trained "
            "longer, the Nature CNN's return climbs from 7.7 [4.2, 9.9] at 30,000 SGD steps to "
            "15.4 [12.6, 18.4] at 100,000 (batch 256, 3 seeds each) against the data's 18.0, "
            "near the data but not above it; a CQL weight of 1 or 4 instead of 0.1 did not "
            "change that (14.0 [13.0, 14.8] and 14.0 [12.6, 15.6] at 100,000 steps, 3 seeds "
            "each), nor did 3-step returns (5.8, one seed); claim 2 at the ALE ResNet sizes "
            "(ResNet-18/34/50) got 15,000 steps of two sizes, one seed each: not a test of "
            "the claim, see that page.", ""]


def is_core(args, job: Job) -> bool:
    """Whether `job` belongs to the issue's design: claims 1-3 with --seeds seeds at the
    study's step budgets (not claim 1's extra seeds, not a variant tried)."""
    variants = {label for label, _ in NEAR_OPTIMAL_TRIED}
    return (job.experiment in DESIGN_EXPERIMENTS and job.seed < args.seeds
            and job.label not in variants)


def label_matches(label: str, text: str) -> bool:
    """Whether a run's `label` is picked by the --label `text`: it contains it, or is it
    exactly when `text` is '=TEXT'."""
    return label == text[1:] if text.startswith("=") else text in label


def selected_jobs(args, jobs: list[Job]) -> list[Job]:
    """The runs the training stage runs: those of --experiments, only the design's
    (`is_core`) under the default `--experiments design`, and with --label only those whose
    label contains one of the --label texts (is it exactly, for a text given as '=TEXT');
    and, as `make` would, every run they start from (`Job.after`) that is not done yet,
    whichever experiment or label it has (in job order)."""
    chosen = {j.run_dir for j in jobs if j.experiment in args.experiments
              and (not args.design_only or is_core(args, j))
              and (not args.labels or any(label_matches(j.label, text)
                                          for text in args.labels))}
    wanted = [j for j in jobs if j.run_dir in chosen]
    while True:
        needed = {a.run_dir for j in wanted for a in j.after
                  if a.run_dir not in chosen and job_state(a) != "done"}
        if not needed:
            return wanted
        chosen |= needed
        wanted = [j for j in jobs if j.run_dir in chosen]


def time_section(args, jobs: list[Job], attempts: list[dict],
                 data_seconds: float | None = None) -> list[str]:
    runs = [a for a in attempts if "session" not in a and "final" not in a]
    sessions = [a for a in attempts if a.get("session") == "train"]
    finals = [a for a in attempts if "final" in a]
    lines = ["## Wall time", "",
             f"Training runs {args.jobs} at a time, one core each.  Job time = the sum of "
             "every attempt's wall time (OUT/jobs.jsonl; a resumed run adds its attempts).", "",
             "| experiment | runs done | job time | seeds | steps per run |",
             "|---|---:|---:|---:|---|"]
    steps = {"claim1": f"{args.steps:,} SGD",
             "claim1_near_optimal": ", ".join(
                 f"{s:,}" for s in sorted({args.steps, *(tried_steps(args, f)
                                                         for _, f in NEAR_OPTIMAL_TRIED)}))
             + " SGD",
             "claim2": f"{args.steps:,} SGD", "claim3a": f"{args.finetune_steps:,} SGD",
             "claim3b": f"{args.online_env_steps:,} env",
             "claim1_tried": ", ".join(f"{s:,}" for s in sorted(
                 {tried_steps(args, f) for *_, f in TRIED})) + " SGD",
             "claim3a_tried": ", ".join(f"{s:,}" for s in sorted(
                 {args.finetune_steps * c.get("steps", 1) for _, c in FINETUNE_TRIED})) + " SGD",
             "claim2_cql_0_1": f"{args.steps:,} SGD",
             "claim3b_cql_0_1": f"{args.online_env_steps:,} env",
             **{e: f"{args.steps:,}, {args.finetune_steps:,} SGD"
                for e in (*OTHER_HELD_OUT, "claim3a_seen_game",
                          *(f.experiment for f in FOLLOW_UPS))}}
    for experiment in EXPERIMENTS:
        mine = [j for j in jobs if j.experiment == experiment]
        seconds = sum(a["seconds"] for a in runs if a.get("experiment") == experiment)
        per_label = {}
        for j in mine:
            per_label.setdefault(j.label, set()).add(j.seed)
        counts = sorted({len(seeds) for seeds in per_label.values()}) or [0]
        seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        lines.append(f"| {experiment} | {sum(job_state(j) == 'done' for j in mine)} of "
                     f"{len(mine)} | {_hours(seconds)} | {seeds} | {steps[experiment]} |")
    train_wall = sum(s["seconds"] for s in sessions)
    lines += ["", f"Training stage wall time (all sessions): {_hours(train_wall)}; job time "
              f"of every attempt: {_hours(sum(a['seconds'] for a in runs))}.", ""]
    core = {j.name for j in jobs if is_core(args, j)}
    core_seconds = sum(a["seconds"] for a in runs if a.get("job") in core)
    lines += [f"Of that, the issue's design alone ({len(core)} runs: claims 1 to 3 with "
              f"{args.seeds} seeds at the study's step budgets, without claim 1's extra seeds "
              f"and the variants tried): job time {_hours(core_seconds)}, about "
              f"{_hours(core_seconds / args.jobs)} at {args.jobs} runs at a time; the rest "
              f"{_hours(sum(a['seconds'] for a in runs) - core_seconds)}.", ""]
    core_final = sum(a["seconds"] for a in finals if a["final"] in core)
    if finals:
        seconds = sum(a["seconds"] for a in finals)
        lines += [f"The final reading (stage `final`): {len(finals)} evaluation(s) of "
                  f"{args.final_episodes} episodes, job time {_hours(seconds)} "
                  f"({_hours(core_final)} of it the design's).", ""]
    if data_seconds and all(job_state(j) == "done" for j in jobs if is_core(args, j)):
        total = data_seconds + (core_seconds + core_final) / args.jobs
        lines += [f"`make study` on this machine, from its measured parts: the data stage "
                  f"{_hours(data_seconds)} + the design's runs and their final reading "
                  f"{_hours((core_seconds + core_final) / args.jobs)} at {args.jobs} at a time "
                  f"= **{_hours(total)}**, plus the report (a few minutes) and the pixels "
                  "stage (PIXELS.md).  The parts were measured as they ran, not in one go: "
                  "an interrupted study resumes per run.", ""]
    failed = [a for a in runs if not a.get("done")]
    if failed:
        lines += [f"Attempts that did not finish their run: {len(failed)} (the last: "
                  f"{failed[-1]['job']}, exit {failed[-1]['exit']}).", ""]
    return lines


def commands_section(args, out: pathlib.Path, docs: pathlib.Path, jobs: list[Job],
                     report_runs: dict) -> list[str]:
    lines = ["## How to rerun", "",
             "    make study       # the design: .venv/bin/python scripts/study.py $(STUDY_ARGS)",
             "    make study-all   # everything: scripts/study.py --experiments all $(STUDY_ARGS)",
             "    .venv/bin/python scripts/study.py --stage report   # this page from the runs",
             ""]
    missing = [j.name for j in jobs if job_state(j) != "done"]
    if missing:
        lines += [f"Runs not done yet ({len(missing)}):", "",
                  *[f"- {name}" for name in missing], ""]
    lines += ["The exact commands (each run also keeps its command in `study_job.json` and its "
              "log in `study.log`; the reports' `runs/data/*` are the logged episodes, written "
              "by the script from the datasets):", "", "```"]
    lines += [show(collect_command(args, out, g, overwrite=False)) for g in STUDY_GAMES]
    lines += [show(j.command) for j in sorted(jobs, key=lambda j: EXPERIMENTS.index(
        j.experiment))]
    lines += [show(final_command(args, j)) for j in jobs
              if args.final_episodes and is_read_final(j)]
    lines += [f"scaled-ql report --out {_rel(docs / 'results' / e)} {_brace(dirs)}"
              for e, dirs in report_runs.items() if dirs]
    finals = {e: [f.parent for f in final_files(args, jobs, dirs)]
              for e, dirs in report_runs.items() if e in FINAL_EXPERIMENTS}
    lines += [f"scaled-ql report --out {_rel(docs / 'results' / e / 'final')} "
              + " ".join(f"{part}/{FINAL_FILE}" for part in _brace(dirs).split())
              for e, dirs in finals.items() if dirs]
    return lines + ["```", ""]


def _brace(run_dirs) -> str:
    """Run directories as bash brace expansions per parent: a/seed{0,1} b/seed0."""
    parents: dict[str, list[str]] = {}
    for run_dir in run_dirs:
        path = pathlib.Path(run_dir)
        parents.setdefault(_rel(path.parent), []).append(path.name)
    return " ".join(f"{parent}/{names[0]}" if len(names) == 1 else
                    f"{parent}/{{{','.join(names)}}}" for parent, names in parents.items())


# --- main ------------------------------------------------------------------------------------

def main(argv=None) -> int:
    args = parse_args(argv)
    out = pathlib.Path(args.out).absolute()
    docs = pathlib.Path(args.docs).absolute()
    out.mkdir(parents=True, exist_ok=True)
    jobs = build_jobs(args, out)
    failures: list = []
    if args.stage in ("all", "data"):
        try:
            failures += [{"job": f"data: {g}", "exit": 1, "log": str(collect_log(out, g))}
                         for g in collect_data(args, out)]
        except CollectionInProgressError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    if args.stage in ("all", "train"):
        selected = selected_jobs(args, jobs)
        if args.dry_run:
            for job in selected:
                print(f"{job_state(job):7s} {job.name}\n        {show(job.command)}")
        else:
            missing = [g for g in PRETRAIN_GAMES + (HELD_OUT_GAME,)
                       if not (dataset_folder(out, g) / "dataset_info.json").exists()]
            if missing:
                print(f"error: no complete dataset of {', '.join(missing)} in {out / 'data'} "
                      "(stage data)", file=sys.stderr)
                return 1
            failures += run_jobs(selected, args.jobs, out)
    if args.stage in ("all", "final"):
        if args.dry_run:
            for job in final_jobs(args, jobs):
                state = ("read" if final_done(args, job) else "to read"
                         if job_state(job) == "done" else "waits on its run")
                print(f"final {state:16s} {job.name}\n        {show(final_command(args, job))}")
        else:
            failures += read_final_policies(args, jobs, out)
    if args.stage in ("all", "pixels"):
        if pixels_stage(args, out, docs) != 0:
            failures.append({"job": "pixels", "exit": 1, "log": str(out / "pixels" / LOG_FILE)})
    if args.stage in ("all", "report") and not args.dry_run:
        from scaled_ql._quiet import quiet_third_party

        quiet_third_party()  # the report imports the stack in this process (gym's notice)
        print(write_results(args, out, docs, jobs))
    for failure in failures:
        print(f"failed: {failure['job']} (exit {failure['exit']}), log {failure['log']}",
              file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
