"""Containers run hardened: no-new-privileges, without the capabilities a processing job does not
need (MKNOD among them), with a process-count limit, under Docker's default seccomp profile.
Checked from inside a real container."""

from __future__ import annotations

import json
from typing import Any

from docker_engine import Localproc, job_payload, script_input, unique_name

# Bit numbers from linux/capability.h.
CAPS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
    "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13, "SYS_CHROOT": 18,
    "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31,
}  # fmt: skip
DROPPED = ["MKNOD", "NET_RAW", "SYS_CHROOT", "AUDIT_WRITE", "SETPCAP", "SETFCAP",
           "NET_BIND_SERVICE"]  # fmt: skip
KEPT = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETUID", "SETGID"]

PROBE = r"""
import json, os, shutil, stat, subprocess
status = dict(line.split(':\t', 1) for line in open('/proc/self/status').read().splitlines())
report = {
    'uid': os.getuid(),
    'no_new_privs': status['NoNewPrivs'].strip(),
    'seccomp': status['Seccomp'].strip(),
    'cap_eff': int(status['CapEff'].strip(), 16),
}
try:
    os.mknod('/tmp/disk', stat.S_IFBLK | 0o666, os.makedev(8, 0))
    report['mknod'] = 'made'
except OSError as err:
    report['mknod'] = 'refused: %s' % err
# A setuid-root copy of `id`, run by an unprivileged user, must not run as root.
shutil.copy('/usr/bin/id', '/tmp/id-suid')
os.chmod('/tmp/id-suid', 0o4755)
out = subprocess.run(['/tmp/id-suid', '-u'], capture_output=True, text=True,
                     preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
report['setuid_euid'] = out.stdout.strip()
print('REPORT ' + json.dumps(report), flush=True)
"""

BOMB = r"""
import json, os, threading, time
def read(path):
    try:
        return open(path).read().strip()
    except OSError:
        return None
release = threading.Event()
threads = 0
try:
    while threads < 200000:  # far above any limit: the limit, not this bound, stops it
        threading.Thread(target=release.wait, daemon=True).start()
        threads += 1
except RuntimeError:
    pass
try:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    fork = 'forked'
except OSError as err:
    fork = 'refused: %s' % err
release.set()
limit = read('/sys/fs/cgroup/pids.max') or read('/sys/fs/cgroup/pids/pids.max')
print('REPORT ' + json.dumps({'threads': threads, 'fork': fork, 'pids_max': limit}), flush=True)
"""


def run_probe(localproc: Localproc, s3: Any, script: str, stem: str) -> dict[str, Any]:
    bucket = s3.make_bucket()
    name = unique_name(stem)
    entrypoint, code = script_input(s3, bucket, script)
    payload = job_payload(name, entrypoint=entrypoint, inputs=[code])
    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        timeout=180,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("algo-1 | REPORT "))
    return json.loads(line.split("REPORT ", 1)[1])


def test_no_new_privileges_no_mknod_reduced_capabilities_default_seccomp(
    localproc: Localproc, s3: Any
) -> None:
    seen = run_probe(localproc, s3, PROBE, "hardened")
    assert seen["uid"] == 0  # root in the container, as most processing images run
    assert seen["no_new_privs"] == "1"
    assert seen["seccomp"] == "2"  # a seccomp filter: Docker's default profile is in force
    assert seen["mknod"].startswith("refused"), seen
    assert seen["setuid_euid"] == "65534", seen  # the setuid bit gave nothing
    present = {cap for cap, bit in CAPS.items() if seen["cap_eff"] >> bit & 1}
    assert not present & set(DROPPED), present
    assert set(KEPT) <= present, present


def test_a_fork_bomb_is_contained_by_the_process_limit(localproc: Localproc, s3: Any) -> None:
    seen = run_probe(localproc, s3, BOMB, "forkbomb")
    assert seen["pids_max"] == "4096"  # ml.t3.medium: the minimum
    assert seen["threads"] < 4096
    assert seen["fork"].startswith("refused"), seen
