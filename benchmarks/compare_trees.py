"""Compare the trivial quickstart run of two source trees, interleaved, on this machine:

    git worktree add /tmp/before COMMIT
    python benchmarks/compare_trees.py /tmp/before . [--repeats 20]

Each repeat runs `localproc run fixtures/jobs/quickstart.json --s3-root fixtures/s3` once per
tree (a fresh state dir each time, the tree put first on PYTHONPATH, bytecode allowed as a user's
install has it) and records its wall time and CPU time (user + system). Interleaving makes a
change of the host's load hit both trees alike; the medians and their ratio are printed. For
"nothing gets slower" checks of a change, beside `benchmarks/run.py --only overhead startup`.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def one_run(tree: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one quickstart run with `tree`'s localproc."""
    with tempfile.TemporaryDirectory() as state_dir:
        argv = [
            sys.executable, "-m", "localproc", "run",
            str(REPO / "fixtures" / "jobs" / "quickstart.json"),
            "--s3-root", str(REPO / "fixtures" / "s3"), "--state-dir", state_dir,
        ]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        # cwd outside both trees: `python -m` would otherwise import the cwd's localproc
        subprocess.run(argv, env=env, cwd=state_dir, check=True, capture_output=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    trees = {"baseline": args.baseline.resolve(), "candidate": args.candidate.resolve()}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for tree in trees.values():
        compileall.compile_dir(tree / "localproc", quiet=1)
        one_run(tree, {**env, "PYTHONPATH": str(tree)})  # warm-up, not counted
    walls: dict[str, list[float]] = {name: [] for name in trees}
    cpus: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.repeats):
        for name, tree in trees.items():
            wall, cpu = one_run(tree, {**env, "PYTHONPATH": str(tree)})
            walls[name].append(wall)
            cpus[name].append(cpu)
    for name, tree in trees.items():
        print(
            f"{name:9} {tree}: wall {statistics.median(walls[name]) * 1e3:.0f} ms, "
            f"CPU {statistics.median(cpus[name]) * 1e3:.0f} ms (medians of {args.repeats})"
        )
    for label, figures in (("wall", walls), ("CPU", cpus)):
        ratio = statistics.median(figures["candidate"]) / statistics.median(figures["baseline"])
        print(f"candidate / baseline, {label}: {ratio:.3f}")


if __name__ == "__main__":
    main()
