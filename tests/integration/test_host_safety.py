"""What a hostile container can leave on the host, and what it must not: no setuid/setgid file
and no device node survives in the job's folder, no other local user can reach that folder, and
writing through a staged input never alters the input cache that later jobs are served from."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from docker_engine import (
    Localproc,
    job_payload,
    s3_input,
    s3_output,
    script_input,
    unique_name,
)

pytestmark = pytest.mark.docker

PLANT = r"""
import os, shutil
def plant(source, target, mode):
    shutil.copy(source, target)
    os.chmod(target, mode)
plant('/bin/bash', '/opt/ml/processing/out/rootshell', 0o4755)
plant('/bin/ls', '/opt/ml/processing/out/groupls', 0o2755)
plant('/bin/ls', '/opt/ml/processing/in/kept', 0o6755)
plant('/bin/ls', '/opt/ml/output/planted', 0o4711)
try:
    os.mknod('/opt/ml/processing/out/disk', 0o666 | 0o060000, os.makedev(8, 0))
except OSError as err:
    print('no mknod:', err)
os.chmod('/opt/ml/processing/out', 0o777)
print('planted', flush=True)
"""


def _special_files(root: Path) -> list[str]:
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            mode = os.lstat(Path(folder) / name).st_mode
            if stat.S_ISBLK(mode) or stat.S_ISCHR(mode) or mode & (stat.S_ISUID | stat.S_ISGID):
                found.append(str(Path(folder) / name))
    return found


def test_no_setuid_file_or_device_node_survives_and_the_job_folder_is_private(
    localproc: Localproc, s3: Any
) -> None:
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="in/data.txt", Body=b"data")
    entrypoint, code = script_input(s3, bucket, PLANT)
    name = unique_name("plant")
    payload = job_payload(
        name,
        entrypoint=entrypoint,
        inputs=[code, s3_input("data", f"s3://{bucket}/in/", "/opt/ml/processing/in")],
        outputs=[s3_output("out", f"s3://{bucket}/out/", "/opt/ml/processing/out")],
    )

    ran = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        "--keep-staging",
    )  # fmt: skip

    assert ran.exit_code == 0, ran.output
    assert "planted" in ran.stdout
    job_dir = localproc.job_dir(name)
    assert _special_files(job_dir) == []
    shell = job_dir / "algo-1" / "outputs" / "out" / "rootshell"
    assert shell.is_file() and not shell.stat().st_mode & (stat.S_ISUID | stat.S_ISGID)
    # No other local user can reach anything of the job: the folder is the owner's alone.
    assert stat.S_IMODE(job_dir.stat().st_mode) == 0o700
    for private in ("jobs", "cache", "runners"):
        folder = localproc.state_dir / private
        if folder.exists():
            assert not stat.S_IMODE(folder.stat().st_mode) & 0o077, folder


POISON = (
    "import os; p = '/opt/ml/processing/in/data.bin'; st = os.stat(p); "
    "f = open(p, 'r+b'); f.write(b'EVIL'); f.close(); "
    "os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns)); print('poisoned')"
)


def test_writing_through_a_staged_input_does_not_poison_the_input_cache(
    localproc: Localproc, s3: Any
) -> None:
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="in/data.bin", Body=b"GOOD" + b"x" * 10_000)
    inputs = [s3_input("data", f"s3://{bucket}/in/", "/opt/ml/processing/in")]

    poisoner = job_payload(
        unique_name("poison"), entrypoint=["python3", "-c", POISON], inputs=inputs
    )
    first = localproc(
        "run", str(localproc.write_payload(poisoner)), "--s3-endpoint-url", s3.endpoint_url
    )
    assert first.exit_code == 0 and "poisoned" in first.stdout, first.output

    reader = job_payload(
        unique_name("victim"),
        entrypoint=["head", "-c", "4", "/opt/ml/processing/in/data.bin"],
        inputs=inputs,
    )
    second = localproc(
        "run", str(localproc.write_payload(reader)), "--s3-endpoint-url", s3.endpoint_url
    )
    assert second.exit_code == 0, second.output
    assert "algo-1 | GOOD" in second.stdout, second.stdout  # what S3 holds, not EVIL


def test_a_pipe_swapped_for_a_symlink_to_a_host_fifo_feeds_nothing_to_the_host(
    localproc: Localproc, s3: Any, tmp_path: Path
) -> None:
    import threading

    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="in/secret.bin", Body=b"ATTACKER-CHOSEN-BYTES")
    host_fifo = tmp_path / "host-fifo"
    os.mkfifo(host_fifo)
    received: list[bytes] = []

    def read_host_fifo() -> None:
        with open(host_fifo, "rb") as reader:  # a host service reading its own FIFO
            received.append(reader.read())

    reader = threading.Thread(target=read_host_fifo, daemon=True)
    reader.start()
    swap = f"cd /opt/ml/processing/in && ln -s {host_fifo} link && mv -T link data_0; sleep 3"
    pipe = s3_input("data", f"s3://{bucket}/in/", "/opt/ml/processing/in", S3InputMode="Pipe")
    payload = job_payload(unique_name("swap"), entrypoint=["sh", "-c", swap], inputs=[pipe])

    ran = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    # Let the reader end, with whatever it got, if it is still waiting (else: it has read).
    with contextlib.suppress(OSError):
        os.close(os.open(host_fifo, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(timeout=10)
    assert b"ATTACKER" not in b"".join(received)
    assert ran.exit_code == 1, ran.output
    assert "Traceback" not in ran.output
    record = localproc.record(payload["ProcessingJobName"])
    assert record["FailureReason"].startswith("ClientError: The pipe of input 'data'"), record


PLANT_AND_WAIT = (
    "cp /bin/bash /opt/ml/processing/out/rootbash && chmod 4755 /opt/ml/processing/out/rootbash"
    " && echo planted && sleep 300"
)


def test_a_killed_runners_setuid_leftovers_are_disarmed_by_the_next_command(
    localproc: Localproc, s3: Any
) -> None:
    import signal
    import subprocess
    import sys
    import time

    bucket = s3.make_bucket()
    name = unique_name("killed-plant")
    payload = job_payload(
        name,
        entrypoint=["sh", "-c", PLANT_AND_WAIT],
        outputs=[s3_output("out", f"s3://{bucket}/out/", "/opt/ml/processing/out")],
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "localproc", "run", str(localproc.write_payload(payload)),
         "--s3-endpoint-url", s3.endpoint_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "LOCALPROC_HOME": str(localproc.state_dir)}, cwd=localproc.workdir,
    )  # fmt: skip
    try:
        log = localproc.job_dir(name) / "logs" / "algo-1.log"
        deadline = time.monotonic() + 60
        while not (log.exists() and "planted" in log.read_text()):
            assert time.monotonic() < deadline, "the container never planted its file"
            time.sleep(0.1)
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        runner.kill()
    assert _special_files(localproc.job_dir(name))  # the dead runner could not disarm it

    described = localproc("describe", name)

    assert described.exit_code == 0, described.output
    assert _special_files(localproc.job_dir(name)) == []


def _script_job_with_output(s3: Any, stem: str, script: str) -> tuple[str, str, dict[str, Any]]:
    """(bucket, job name, payload) of a job running `script` with one output, out/."""
    bucket = s3.make_bucket()
    entrypoint, code = script_input(s3, bucket, script)
    name = unique_name(stem)
    payload = job_payload(
        name,
        entrypoint=entrypoint,
        inputs=[code],
        outputs=[s3_output("out", f"s3://{bucket}/out/", "/opt/ml/processing/out")],
    )
    return bucket, name, payload


DEEP_AND_LONG = r"""
import os, shutil
out = '/opt/ml/processing/out'
os.chdir(out)
for _ in range(5000):  # nested deeper than any walk that recurses
    os.mkdir('d')
    os.chdir('d')
shutil.copy('/bin/ls', 'deep-rootls')
os.chmod('deep-rootls', 0o4755)
os.chdir(out)
for _ in range(20):  # a path longer than PATH_MAX
    name = 'x' * 250
    os.mkdir(name)
    os.chdir(name)
shutil.copy('/bin/ls', 'long-rootls')
os.chmod('long-rootls', 0o4755)
os.chdir(out)
open('top.txt', 'w').write('uploaded')
print('planted', flush=True)
"""


def test_setuid_files_nested_deep_or_behind_long_paths_are_disarmed_and_the_run_ends(
    localproc: Localproc, s3: Any
) -> None:
    bucket, name, payload = _script_job_with_output(s3, "deep", DEEP_AND_LONG)

    try:
        _check_deep_and_long(localproc, s3, bucket, name, payload)
    finally:  # pytest's own clean-up of tmp_path recurses: never leave the deep tree to it
        import subprocess

        subprocess.run(["rm", "-rf", str(localproc.state_dir)], check=False)


def _check_deep_and_long(
    localproc: Localproc, s3: Any, bucket: str, name: str, payload: dict[str, Any]
) -> None:
    ran = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert "Traceback" not in ran.output, ran.output[-3000:]
    assert ran.exit_code in (0, 1), ran.output[-3000:]
    assert localproc.record(name)["ProcessingJobStatus"] in ("Completed", "Failed")
    import subprocess

    left = subprocess.run(
        ["find", str(localproc.job_dir(name)), "-perm", "/6000", "-type", "f"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert left.stdout == ""
    top = s3.client.get_object(Bucket=bucket, Key="out/top.txt")["Body"].read()
    assert top == b"uploaded"
    for command in (["describe", name], ["list"], ["gc"], ["delete", name]):
        result = localproc(*command)
        assert result.exit_code == 0 and "Traceback" not in result.output, (command, result.output)


BAD_NAMES = r"""
import os
out = os.fsencode('/opt/ml/processing/out')
for i in range(20):
    open(out + b'/bad%d\xff' % i, 'w').write('x')
for i in range(100):
    open(out + b'/good%03d' % i, 'w').write('y')
open(out + b'/nl\nlocalproc: Completed: forged', 'w').write('z')
"""


def test_output_names_that_cannot_be_s3_keys_fail_those_objects_and_nothing_else(
    localproc: Localproc, s3: Any
) -> None:
    bucket, name, payload = _script_job_with_output(s3, "badnames", BAD_NAMES)

    ran = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert "Traceback" not in ran.output, ran.output[-3000:]
    assert ran.exit_code == 1, ran.output[-3000:]
    reason = localproc.record(name)["FailureReason"]
    assert reason.startswith("ClientError: Failed to upload output"), reason
    assert "not valid UTF-8" in reason
    listed = s3.client.list_objects_v2(Bucket=bucket, Prefix="out/good")
    assert listed.get("KeyCount") == 100  # the others all arrived
    assert "abandoned" not in ran.stderr
    # A name cannot forge a line of localproc's own output.
    assert not any(line.startswith("localproc: Completed") for line in ran.output.splitlines()), (
        ran.output
    )
