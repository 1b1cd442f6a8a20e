"""Every byte a container writes reaches its saved log before the run ends: a million short
lines, one huge line without a newline. The saved log keeps the raw bytes; the terminal copy may
cut a very long line, with a marker."""

from __future__ import annotations

import hashlib
from typing import Any

from docker_engine import Localproc, job_payload, unique_name

MANY = 1_000_001


def test_a_million_and_one_lines_all_reach_the_saved_log(localproc: Localproc, s3: Any) -> None:
    name = unique_name("many-lines")
    write = f"import sys; sys.stdout.writelines('line %d\\n' % i for i in range({MANY}))"
    payload = job_payload(name, entrypoint=["python3", "-c", write])

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        timeout=400,
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr[-2000:]
    saved = (localproc.job_dir(name) / "logs" / "algo-1.log").read_bytes()
    expected = "".join(f"line {i}\n" for i in range(MANY)).encode()
    assert saved.count(b"\n") == MANY
    assert hashlib.sha256(saved).hexdigest() == hashlib.sha256(expected).hexdigest()
    # The terminal got every line too, in order.
    shown = [line for line in result.stdout.splitlines() if line.startswith("algo-1 | ")]
    assert len(shown) == MANY
    assert shown[-1] == f"algo-1 | line {MANY - 1}"


def test_a_30_mb_line_without_a_newline_is_saved_whole(localproc: Localproc, s3: Any) -> None:
    name = unique_name("long-line")
    size = 30 * 2**20
    write = (
        "import sys; b = bytes(range(32, 127)) * 1000; "
        f"[sys.stdout.buffer.write(b[:min(len(b), {size} - i)]) for i in range(0, {size}, len(b))]"
    )
    payload = job_payload(name, entrypoint=["python3", "-c", write])

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        timeout=300,
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr[-2000:]
    saved = (localproc.job_dir(name) / "logs" / "algo-1.log").read_bytes()
    pattern = bytes(range(32, 127)) * 1000
    expected = (pattern * (size // len(pattern) + 1))[:size]
    assert len(saved) == size
    assert saved == expected
    # On the terminal the line is cut, and says so; the whole of it is in the saved log.
    shown = [line for line in result.stdout.splitlines() if line.startswith("algo-1 | ")]
    assert len(shown) == 1
    assert len(shown[0]) < 2**20
    assert "cut" in shown[0] and "saved log" in shown[0]


def test_a_reader_that_goes_away_ends_only_the_live_copy(localproc: Localproc, s3: Any) -> None:
    """`localproc run job.json | head -2`: the pipe closes early; the saved log still gets
    every line, nothing prints a traceback, and the exit code is the job's."""
    import os
    import subprocess
    import sys

    name = unique_name("head")
    lines = 200_000
    write = f"import sys; sys.stdout.writelines('line %d\\n' % i for i in range({lines}))"
    path = localproc.write_payload(job_payload(name, entrypoint=["python3", "-c", write]))
    process = subprocess.Popen(
        [sys.executable, "-m", "localproc", "run", str(path), "--s3-endpoint-url", s3.endpoint_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "LOCALPROC_HOME": str(localproc.state_dir)}, cwd=localproc.workdir,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    first = [process.stdout.readline() for _ in range(2)]
    process.stdout.close()  # what `head -2` does once it has its lines
    err = process.stderr.read().decode(errors="replace")
    code = process.wait(timeout=300)

    assert first[0].startswith(b"algo-1 | line 0"), first
    assert "Traceback" not in err, err[-3000:]
    assert code == 0, err[-2000:]
    saved = (localproc.job_dir(name) / "logs" / "algo-1.log").read_bytes()
    assert saved.count(b"\n") == lines
