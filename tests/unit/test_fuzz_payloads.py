"""Fuzzing of payloads (issue 12, "Done when"): a few hundred mutations of a valid payload (a fixed
seed) through `localproc validate` and `localproc plan` in this process (typer's runner calls
the same command functions as `localproc`). Each must end with an answer — exit 0 or 2 (plan
also 1 for a job that would fail, 4 when it cannot run here) — never a traceback, and neither
writes anything to the state dir. A sample through the real program:
tests/integration/test_fuzz_payloads.py."""

from __future__ import annotations

from pathlib import Path

from helpers.fuzz_payloads import (
    PAYLOADS,
    PLAN_EXITS,
    VALIDATE_EXITS,
)
from typer.testing import CliRunner

from localproc.cli.app import app


def test_the_corpus_covers_valid_and_rejected_payloads(corpus: tuple[Path, list[Path]]) -> None:
    _, paths = corpus
    assert len(paths) == PAYLOADS
    assert len({p.read_bytes() for p in paths}) > PAYLOADS * 0.8


def test_validate_and_plan_in_process_answer_every_payload(
    corpus: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    s3_root, paths = corpus
    state_dir = tmp_path / "state"
    runner = CliRunner()
    seen: dict[str, set[int]] = {"validate": set(), "plan": set()}
    for path in paths:
        for command, allowed in (("validate", VALIDATE_EXITS), ("plan", PLAN_EXITS)):
            arguments = [command, str(path)]
            if command == "plan":
                arguments += ["--s3-root", str(s3_root), "--state-dir", str(state_dir)]
            result = runner.invoke(app, arguments)
            crash = result.exception is not None and not isinstance(result.exception, SystemExit)
            assert not crash, (path.name, command, repr(result.exception), result.output[-2000:])
            assert result.exit_code in allowed, (path.name, command, result.output[-2000:])
            assert "Traceback" not in result.output
            seen[command].add(result.exit_code)
    assert seen["validate"] == {0, 2}, seen
    assert 2 in seen["plan"] and seen["plan"] & {0, 1}, seen
    assert not state_dir.exists()
