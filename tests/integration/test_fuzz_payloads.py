"""Fuzzing of payloads (issue 12, "Done when"): a sample of the mutated payloads of
tests/unit/test_fuzz_payloads.py through the real program in a subprocess, `localproc validate`
and `localproc plan` as users run them: each ends with an answer, never a traceback, and
neither writes anything to the state dir."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from unit import test_fuzz_payloads
from unit.test_fuzz_payloads import PLAN_EXITS, SEED, VALIDATE_EXITS

corpus = test_fuzz_payloads.corpus  # the fixture: the payloads, written once per module

SUBPROCESS_SAMPLE = 24  # each through validate and plan: 48 runs of the program


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
