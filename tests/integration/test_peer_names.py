"""Every algo-i resolves from every instance from its very first instruction to the end of the
job, also after that instance's container has exited (Docker's own DNS forgets it then)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from docker_engine import Localproc, both_engines, job_payload, script_input, unique_name

PEERS = ("algo-1", "algo-2", "algo-3")
FIRST = (
    "for p in algo-1 algo-2 algo-3; do echo FIRST $p $(getent hosts $p | cut -d' ' -f1); done; "
    "exec python3 -u /opt/ml/processing/input/code/script.py"
)
LATER = r"""
import json, socket, time
me = json.load(open('/opt/ml/config/resourceconfig.json'))['current_host']
if me != 'algo-1':  # algo-1 ends at once; the others look for it after it has gone
    time.sleep(10)
    later = {}
    for peer in ('algo-1', 'algo-2', 'algo-3'):
        try:
            later[peer] = socket.gethostbyname(peer)
        except OSError as err:
            later[peer] = 'unresolved: %s' % err
    print('LATER ' + json.dumps(later), flush=True)
"""


@pytest.mark.parametrize("isolated", [False, True], ids=["bridge", "isolated"])
@both_engines
def test_every_peer_resolves_from_the_start_and_after_it_exited(
    localproc: Localproc, s3: Any, isolated: bool
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("peers")
    _entrypoint, code = script_input(s3, bucket, LATER)
    payload = job_payload(name, entrypoint=["sh", "-c", FIRST], inputs=[code], instance_count=3)
    payload["NetworkConfig"] = {"EnableNetworkIsolation": isolated}

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        timeout=180,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    addresses: dict[str, dict[str, str]] = {}
    for me in PEERS:
        log = (localproc.job_dir(name) / "logs" / f"{me}.log").read_text()
        first = [line.split() for line in log.splitlines() if line.startswith("FIRST ")]
        addresses[me] = {words[1]: (words[2] if len(words) > 2 else "") for words in first}
        assert set(addresses[me]) == set(PEERS), log
        assert all(a.count(".") == 3 for a in addresses[me].values()), (me, addresses[me])
        if me != "algo-1":
            later = json.loads(next(x for x in log.splitlines() if x.startswith("LATER "))[6:])
            assert later == addresses[me], (me, later)  # algo-1 had long exited
    # Everyone sees the same address for each peer.
    assert addresses["algo-1"] == addresses["algo-2"] == addresses["algo-3"]
    assert len(set(addresses["algo-1"].values())) == 3
