"""What a node's call to another node costs through `supervision.stop_aware`, next to the
plain courier client, side by side in one run.

Our Launchpad nodes call the counter (and the learner) through `stop_aware` clients, so a call
still unanswered shortly after the program's stop ends instead of waiting for ever.  Those
calls go through courier's futures; the learner and every actor make one per step
(`counter.increment`).  This times `increment` on a real courier server in this process (a
counter node's server, on localhost), both clients in interleaved blocks, and reports the
medians over blocks and their paired ratio.

    python -m benchmarks.node_calls            # writes benchmarks/results/node_calls.json
    python -m benchmarks.node_calls --quick
"""

import argparse

from benchmarks import common


def run(blocks: int = 20, calls_per_block: int = 1000) -> dict:
    """Seconds per `increment` call of each client (median over blocks) and their ratio."""
    import courier
    import portpicker
    from acme.utils import counting

    from scaled_ql.launchpad_programs.supervision import stop_aware

    port = portpicker.pick_unused_port()
    server = courier.Server(port=port)
    server.Bind("increment", counting.Counter().increment)
    server.Start()
    try:
        plain = courier.Client(f"localhost:{port}")
        clients = {"plain": plain, "stop_aware": stop_aware(plain)}

        def caller(client):
            def calls(n: int) -> None:
                for _ in range(n):
                    client.increment(steps=1)
            return calls

        for client in clients.values():
            caller(client)(100)  # warm up the channel
        seconds = common.interleaved({name: caller(c) for name, c in clients.items()},
                                     blocks, calls_per_block)
    finally:
        server.Stop()
    rows = [{"client": name, "us_per_call": 1e6 * common.median(seconds["wall"][name]),
             "cpu_us_per_call": 1e6 * common.median(seconds["cpu"][name])}
            for name in clients]
    return {"rows": rows, "blocks": blocks, "calls_per_block": calls_per_block,
            "stop_aware_over_plain": common.paired_ratio(seconds, "stop_aware", "plain")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 blocks of 200 calls")
    args = parser.parse_args(argv)
    report = run(5, 200) if args.quick else run()
    print("| client | us per call (wall) | us per call (CPU) |")
    print("|---|---:|---:|")
    for row in report["rows"]:
        print(f"| {row['client']} | {row['us_per_call']:.1f} | {row['cpu_us_per_call']:.1f} |")
    ratio = report["stop_aware_over_plain"]
    print(f"stop_aware / plain: {ratio['wall']:.2f}x wall-clock "
          f"(blocks {ratio['wall_min']:.2f}-{ratio['wall_max']:.2f}), {ratio['cpu']:.2f}x CPU")
    common.write_results("node_calls", report)


if __name__ == "__main__":
    main()
