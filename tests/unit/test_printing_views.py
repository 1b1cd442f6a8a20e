"""What localproc prints is text, never terminal control (issue 12, item 5): printable() and the
text views (tables, summaries) escape control characters and cope with any string."""

from __future__ import annotations

import types
from pathlib import Path

from helpers.printing import ESC, HOSTILE

from localproc.cli.render import describe_table, list_table, run_summary
from localproc.printable import printable, printable_line


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("plain é ✓\ttab\nline") == "plain é ✓\ttab\nline"
    assert printable(HOSTILE) == ("\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07red\\rover\\x9b\\u202eevil\\x00")
    assert printable("lone \ud800 surrogate") == "lone \\ud800 surrogate"
    assert printable_line("two\nlines") == "two\\nlines"
    for char in map(chr, [*range(0x20), *range(0x7F, 0xA0)]):
        if char not in "\t\n":
            assert printable(char).isprintable(), repr(char)
    printable("\udfff").encode("ascii")


def test_describe_table_escapes_every_value_and_keeps_exit_message_lines() -> None:
    described = {
        "ProcessingJobName": "job",
        "ProcessingJobStatus": "Failed",
        "ProcessingJobArn": "arn",
        "AppSpecification": {"ImageUri": "image"},
        "FailureReason": f"AlgorithmError: {HOSTILE}",
        "ExitMessage": f"first {ESC}[31mline\nsecond line\n",
        "ProcessingInputs": [{"InputName": f"in{ESC}[1m"}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out\nforged row"}]},
    }

    text = describe_table(described, Path("/state/jobs/job"), usage=[f"algo-1: {ESC}[5m"])

    assert ESC not in text and "\r" not in text and "\x00" not in text
    assert "\\x1b[2J" in text
    lines = text.splitlines()
    assert any(line.startswith("ExitMessage") and "first \\x1b[31mline" in line for line in lines)
    assert any(line.strip() == "second line" for line in lines)
    assert not any(line.startswith("forged row") for line in lines)


def test_list_table_and_run_summary_escape_values() -> None:
    page = {
        "ProcessingJobSummaries": [
            {
                "ProcessingJobName": "job",
                "ProcessingJobStatus": f"Failed{ESC}[8m",
                "CreationTime": "2026-12-01T10:00:00.000+00:00",
            }
        ],
        "NextToken": f"t{ESC}",
    }
    assert ESC not in list_table(page)
    outcome = types.SimpleNamespace(
        status="Failed",
        name="job",
        seconds=1.0,
        uploads=types.SimpleNamespace(uploaded=[], bytes=0),
        failure_reason=f"AlgorithmError: {HOSTILE}",
        exit_message=f"{ESC}]0;title\x07",
        job_dir=Path("/state/jobs/job"),
    )
    summary = run_summary(outcome)
    assert ESC not in summary and "\n" not in summary
    assert "\\x1b]0;title\\x07" in summary
