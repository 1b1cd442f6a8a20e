"""Fuzzing of payloads (issue 12, "Done when"): a sample of the fuzzed payloads (a fixed seed)
through the real program in a subprocess, `localproc validate` and `localproc plan` as users run
them. Each must end with an answer — exit 0 or 2 (plan also 1 for a job that would fail, 4 when
it cannot run here) — never a traceback, and neither writes anything to the state dir. The whole
corpus goes through the CLI in this process in tests/unit/test_fuzz_payloads.py."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from helpers.fuzz_payloads import (
    PLAN_EXITS,
    SEED,
    SUBPROCESS_SAMPLE,
    VALIDATE_EXITS,
)

# -- mutations --------------------------------------------------------------------------------


# -- the test ---------------------------------------------------------------------------------


def test_validate_and_plan_as_programs_answer_a_sample(
    corpus: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    s3_root, paths = corpus
    state_dir = tmp_path / "state"
    sample = random.Random(SEED).sample(paths, SUBPROCESS_SAMPLE)
    env = {**os.environ, "LOCALPROC_HOME": str(state_dir)}
    for path in sample:
        for command, allowed in (("validate", VALIDATE_EXITS), ("plan", PLAN_EXITS)):
            arguments = [command, str(path)] + (
                ["--s3-root", str(s3_root)] if command == "plan" else []
            )
            done = subprocess.run(
                [sys.executable, "-m", "localproc", *arguments],
                capture_output=True, text=True, errors="replace", timeout=60, env=env,
            )  # fmt: skip
            assert done.returncode in allowed, (path.name, command, done.stderr[-2000:])
            assert "Traceback" not in done.stderr, (path.name, command, done.stderr[-2000:])
    assert not state_dir.exists()
