"""A/B the in-process CPU cost per referral of several source trees, interleaved.

    python bench/intake_ab.py --tree before=/tmp/fd_before --tree after=/work/main --rounds 5

Runs bench/intake_inprocess.py for each tree in turn, ``--rounds`` times (A B A B ...), so
background load affects every tree alike, and prints the minimum and median CPU ms per request
of each (the minimum is the least disturbed by other processes on a shared machine).
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench import harness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tree",
        action="append",
        required=True,
        help="NAME=PATH of a Front Door source tree (repeat)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--cpus", default=None, help="taskset CPU list for the runs")
    args = parser.parse_args(argv)
    trees = dict(t.split("=", 1) for t in args.tree)
    samples: dict[str, list[float]] = {name: [] for name in trees}
    for round_number in range(args.rounds):
        for name, path in trees.items():
            command = [
                sys.executable,
                str(harness.REPO / "bench" / "intake_inprocess.py"),
                "--requests",
                str(args.requests),
                "--app-dir",
                str(Path(path)),
            ]
            if args.cpus:
                command = ["taskset", "-c", args.cpus, *command]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            if set(result["statuses"]) != {"201"}:
                raise RuntimeError(f"{name}: statuses {result['statuses']}")
            samples[name].append(result["cpu_ms_per_request"])
            print(
                f"round {round_number + 1} {name:12s} {result['cpu_ms_per_request']:7.3f} "
                f"CPU ms/request (load {result['load_average'][0]})",
                flush=True,
            )
    print()
    for name, values in samples.items():
        print(
            f"{name:12s} min {min(values):7.3f}  median {harness.median(values):7.3f} "
            "CPU ms/request"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
