"""Free ports for servers we start: claimed so that two of our processes never share one, and a server that finds
one taken anyway moves, with the real tritonserver; an answer on our port from another server is not taken as ours."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.server import ports
from compiler.server.ports import Ports, free_port
from compiler.server.process import TritonProcess

CLAIMER = """
import sys
from compiler.server.ports import Ports
for _ in range(int(sys.argv[1])):
    print(*vars(Ports.free()).values())
"""


def test_a_port_another_process_claimed_is_not_handed_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process takes 300 ports and binds none of them (as tritonserver, loading models before it binds);
    1000 more drawn here must miss them all. Drawn at random from about 14,000 ports without the claims, some 20
    would meet."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    other = subprocess.run([sys.executable, "-c", CLAIMER, "100"], capture_output=True, text=True, check=True,
                           env={**os.environ, "TMPDIR": str(tmp_path)})
    theirs = {int(port) for port in other.stdout.split()}
    assert len(theirs) == 300
    mine = {free_port() for _ in range(1000)}
    assert not mine & theirs
    assert {int(p.name) for p in ports.claims_folder().iterdir()} == mine | theirs


def test_an_old_claim_lapses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "claims_folder", lambda: tmp_path)
    stale = tmp_path / "1234"
    stale.touch()
    assert not ports._claim(stale)
    os.utime(stale, (0, 0))
    assert ports._claim(stale) and not ports._claim(stale)  # taken over, and fresh again


@pytest.mark.tritonserver
def test_a_server_whose_port_is_taken_before_it_binds_moves_to_free_ones(tmp_path: Path) -> None:
    """Something else binds the metrics port after we chose it and before tritonserver does (it binds about a second
    after it starts): the server exits at start, and is started again on new ports."""
    server = TritonProcess(tmp_path, explicit_models=True)
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.start()
        chosen = server.ports
        taken.bind(("127.0.0.1", chosen.metrics))
        taken.listen()
        server.wait_live(timeout=60)
        assert server.ports != chosen and server.ports.metrics != chosen.metrics
        assert server.running() and server._answers_as_ours()
    finally:
        server.stop()
        taken.close()


@pytest.mark.tritonserver
def test_an_answer_from_another_server_on_our_port_is_not_ours(tmp_path: Path) -> None:
    with TritonProcess(tmp_path, explicit_models=True) as theirs:
        theirs.wait_live(timeout=60)
        ours = TritonProcess(tmp_path, ports=Ports(theirs.ports.http, free_port(), free_port()))
        try:
            assert theirs._answers_as_ours() and not ours._answers_as_ours()
        finally:
            ours.stop()
