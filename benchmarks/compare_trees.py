"""Compare the trivial quickstart run of two source trees, interleaved, on this machine:

    git worktree add /tmp/before COMMIT
    python benchmarks/compare_trees.py /tmp/before . [--repeats 20] [--s3]

Each repeat runs `localproc run fixtures/jobs/quickstart.json --s3-root fixtures/s3` (with --s3:
the same objects served by a moto S3 server on 127.0.0.1, through boto3 as a real job's are)
once per tree (a fresh state dir each time, the tree put first on PYTHONPATH, bytecode allowed
as a user's install has it) and records its wall time and CPU time (user + system).
Interleaving makes a change of the host's load hit both trees alike; the medians and their ratio
are printed. For "nothing gets slower" checks of a change, beside
`benchmarks/run.py --only overhead startup`.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: `benchmarks` is importable from the repo

from benchmarks.common import MotoServer, aws_env  # noqa: E402

FIXTURE_S3 = REPO / "fixtures" / "s3"


def one_run(tree: Path, env: dict[str, str], store: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one quickstart run with `tree`'s localproc; `store` is the
    object-store option (`--s3-root DIR` or `--s3-endpoint-url URL`)."""
    with tempfile.TemporaryDirectory() as state_dir:
        argv = [
            sys.executable, "-m", "localproc", "run",
            str(REPO / "fixtures" / "jobs" / "quickstart.json"), *store, "--state-dir", state_dir,
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
    parser.add_argument("--s3", action="store_true", help="read and write through a moto S3 server")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        env = dict(os.environ)
        store = ["--s3-root", str(FIXTURE_S3)]
        if args.s3:
            endpoint = stack.enter_context(_moto_with_fixture_objects())
            env = aws_env()
            store = ["--s3-endpoint-url", endpoint]
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        compare(args.baseline.resolve(), args.candidate.resolve(), args.repeats, env, store)


@contextlib.contextmanager
def _moto_with_fixture_objects() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as workdir:
        server = MotoServer(Path(workdir))
        server.start()
        try:
            for bucket in FIXTURE_S3.iterdir():
                server.upload_dir(bucket, "", bucket=bucket.name)
            yield server.endpoint
        finally:
            server.stop()


def compare(
    baseline: Path, candidate: Path, repeats: int, env: dict[str, str], store: list[str]
) -> None:
    trees = {"baseline": baseline, "candidate": candidate}
    for tree in trees.values():
        compileall.compile_dir(tree / "localproc", quiet=1)
        one_run(tree, {**env, "PYTHONPATH": str(tree)}, store)  # warm-up, not counted
    walls: dict[str, list[float]] = {name: [] for name in trees}
    cpus: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(repeats):
        for name, tree in trees.items():
            wall, cpu = one_run(tree, {**env, "PYTHONPATH": str(tree)}, store)
            walls[name].append(wall)
            cpus[name].append(cpu)
    for name, tree in trees.items():
        print(
            f"{name:9} {tree}: wall {statistics.median(walls[name]) * 1e3:.0f} ms, "
            f"CPU {statistics.median(cpus[name]) * 1e3:.0f} ms (medians of {repeats})"
        )
    for label, figures in (("wall", walls), ("CPU", cpus)):
        ratio = statistics.median(figures["candidate"]) / statistics.median(figures["baseline"])
        print(f"candidate / baseline, {label}: {ratio:.3f}")


if __name__ == "__main__":
    main()
