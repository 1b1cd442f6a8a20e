"""What localproc prints is text, never terminal control (issue 12, item 5): escape sequences and
other control characters from a payload, a record or a container's output are shown as visible
escapes (`\\x1b`), in errors, tables, plan text, summaries and `logs`; `--json` stays exact JSON
and saved logs keep their bytes. Every printer copes with any string (lone surrogates, an ASCII
terminal). Here the program as users run it (a subprocess); no Docker needed, except `plan`
asking the engine about the image. The printers themselves: tests/unit/test_printing_views.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from docker_engine import Localproc, job_payload, s3_input
from helpers.printing import ESC, HOSTILE
from test_logs_instance import record_job

# -- printable ------------------------------------------------------------------------------------


# -- the text views -------------------------------------------------------------------------------


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path) -> Localproc:
    work = tmp_path / "work"
    work.mkdir()
    return Localproc(tmp_path / "state", work)


def test_errors_naming_payload_values_are_escaped(cli: Localproc) -> None:
    payload = job_payload("ok")
    payload["ProcessingJobName"] = f"{ESC}[2Jx"
    path = cli.workdir / "p.json"
    path.write_text(json.dumps(payload))

    result = cli("validate", str(path))

    assert result.exit_code == 2
    assert ESC not in result.stderr
    assert "Value '\\x1b[2Jx' at 'processingJobName'" in result.stderr
    result = cli("describe", f"{ESC}]52;c;x\x07")
    assert result.exit_code == 2 and ESC not in result.stderr and "\x07" not in result.stderr


def test_describe_escapes_a_record_and_copes_with_any_string_and_terminal(cli: Localproc) -> None:
    record_job(
        cli.state_dir, "hostile", 1, {},
        ProcessingJobStatus="Failed",
        FailureReason=f"AlgorithmError: {HOSTILE} é \ud800",
        ExitMessage=f"{ESC}[31mred\nnext",
    )  # fmt: skip
    for env in ({}, {"PYTHONIOENCODING": "ascii", "LC_ALL": "C"}):
        result = cli("describe", "hostile", env=env)

        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        assert ESC not in result.stdout and "\x07" not in result.stdout
        assert "AlgorithmError: \\x1b[2J" in result.stdout

    result = cli("describe", "hostile", "--json")
    assert json.loads(result.stdout)["FailureReason"] == f"AlgorithmError: {HOSTILE} é \ud800"


def test_logs_are_escaped_on_the_terminal_and_kept_as_bytes(cli: Localproc) -> None:
    raw = f"{ESC}[2Jcleared\n\rovertyped {ESC}]8;;http://x\x07link\n"
    folder = record_job(cli.state_dir, "chatty", 1, {"algo-1": raw})

    result = cli("logs", "chatty")

    assert result.exit_code == 0, result.output
    assert ESC not in result.stdout and "\r" not in result.stdout
    assert result.stdout.splitlines() == [
        "algo-1 | \\x1b[2Jcleared",
        "algo-1 | \\rovertyped \\x1b]8;;http://x\\x07link",
    ]
    assert (folder / "logs" / "algo-1.log").read_bytes() == raw.encode()


def test_plan_text_escapes_payload_values(cli: Localproc, docker_client: object) -> None:
    (cli.workdir / "bucket" / "in").mkdir(parents=True)
    (cli.workdir / "bucket" / "in" / f"data{ESC}[1m.csv").write_text("a,b\n")
    payload = job_payload(
        "hostile-plan",
        entrypoint=["python3", "-c", f"print('{ESC}[2J')"],
        environment={"TITLE": f"{ESC}]0;owned\x07"},
        inputs=[s3_input(f"in{ESC}[5m", "s3://bucket/in/", "/opt/ml/processing/input")],
    )
    path = cli.workdir / "p.json"
    path.write_text(json.dumps(payload))

    result = cli("plan", str(path), "--s3-root", str(cli.workdir))

    assert result.exit_code in (0, 1), result.output
    assert ESC not in result.output and "\x07" not in result.output
    assert "TITLE=\\x1b]0;owned\\x07" in result.stdout
    assert not cli.state_dir.exists()
