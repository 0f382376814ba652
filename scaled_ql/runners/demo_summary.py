"""What `make demo` concludes: `summary.json` (`demo_summary`), the one-screen table it ends
with (`format_closing`) and its one-sentence verdict (`verdict`).

Pure functions of the report's summary (`scaled_ql.evaluation.report`) and the demo's config;
`runners.demo` runs the stages and calls them.  docs/DEMO.md shows their output.
"""

import dataclasses

BEHAVIOUR = "behaviour"  # the method (and run) name of the logged data's own episodes


def demo_summary(config, report_summary: dict, wall_time: float) -> dict:
    """`summary.json` of the demo `config` (a `demo.DemoConfig`): per method, the per-game mean
    returns and the normalized IQM with its 95% CI, copied from the report's own summary (so
    the two always agree)."""
    methods = {}
    for group in report_summary["groups"]:
        iqm = group["aggregates"].get("IQM")
        methods[group["method"]] = {
            "label": group["label"],
            "seeds": group["seeds"],
            "final_step": group["final_step"],
            "game_returns": group["game_returns"],
            "iqm": iqm,
        }
    return {
        "suite": config.suite,
        "games": list(config.games),
        "score_name": report_summary["score_name"],
        "normalization": report_summary["normalization"],
        "split_checkpoint_ids": list(config.split) if config.suite == "minatar" else None,
        "config": {k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in dataclasses.asdict(config).items()},
        "methods": methods,
        "wall_time_s": round(wall_time, 1),
    }


def format_closing(summary: dict) -> str:
    """The one-screen table the demo ends with."""
    methods = summary["methods"]
    order = [m for m in (BEHAVIOUR, "scaled_ql", "bc") if m in methods]
    header = {"behaviour": "data (behaviour)", "scaled_ql": "Scaled QL", "bc": "BC"}
    lines = ["| game | " + " | ".join(header[m] for m in order) + " |",
             "|---|" + "---:|" * len(order)]
    for game in summary["games"]:
        lines.append(f"| {game} | " + " | ".join(
            f"{methods[m]['game_returns'][game]:.2f}" for m in order) + " |")
    lines.append("")
    for m in order:
        iqm = methods[m]["iqm"]
        seeds = len(methods[m]["seeds"])
        if iqm is not None:
            lines.append(f"IQM {summary['score_name']}, {header[m]:<16} {iqm['estimate']:7.3f}  "
                         f"(95% CI {iqm['lower']:.3f} to {iqm['upper']:.3f}; "
                         f"{seeds} run{'s' if seeds > 1 else ''} x {len(summary['games'])} games)")
    return "\n".join(lines)


def verdict(summary: dict) -> str:
    """What this run shows, in two sentences: Scaled QL against the data it learned from (the
    lower end of its 95% CI against the data's IQM), then against BC (against BC's whole
    interval)."""
    methods = summary["methods"]
    if summary["suite"] == "atari":
        return ("At this scale (random-policy data, a few thousand SGD steps on 2 CPU cores) the "
                "ALE demo shows the pipeline end to end -- real ALE games, the rlu_atari schema, "
                "training, evaluation, the report -- not learning; `make demo` (MinAtar) is "
                "where learning is measured.")
    sq, bc, data = (methods.get(m, {}).get("iqm") for m in ("scaled_ql", "bc", BEHAVIOUR))
    if not (sq and bc and data):
        return "Not every method has a scored evaluation; see the report."
    above_data = sq["lower"] > data["estimate"]
    above_bc = sq["lower"] > bc["upper"]
    lines = [
        (f"Scaled QL learned from its data: the lower end of its 95% CI ({sq['lower']:.3f}) "
         f"clears the IQM of the play it learned from ({data['estimate']:.3f})."
         if above_data else
         f"Not shown that Scaled QL improves on its data: the lower end of its 95% CI "
         f"({sq['lower']:.3f}) does not clear the data's IQM ({data['estimate']:.3f})."),
        (f"It is above BC too: that lower end clears BC's whole interval (upper end "
         f"{bc['upper']:.3f})." if above_bc else
         f"Above BC: not shown at this size (its CI overlaps BC's, whose upper end is "
         f"{bc['upper']:.3f})."),
    ]
    if not (above_data and above_bc):
        lines.append("The next things to try are more logged steps and more SGD steps "
                     "(--collect-steps, --train-steps); `make study` measures the claims at a "
                     "larger scale (docs/RESULTS.md).")
    return "  ".join(lines)
