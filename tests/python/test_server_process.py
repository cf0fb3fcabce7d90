"""The real binary answers pyarrow.flight and shuts down cleanly."""

import signal
import subprocess

import pyarrow.flight as flight

from conftest import BINARY, LISTED_ACTIONS, ServerProcess


def test_list_actions_over_pyarrow_flight(server: ServerProcess) -> None:
    client = flight.connect(server.endpoint)
    actions = list(client.list_actions())
    assert [(a.type, a.description) for a in actions][0] == ("DELETE", "Delete objects by key prefix")
    assert [a.type for a in actions] == LISTED_ACTIONS
    client.close()


def test_sigterm_exits_zero(server: ServerProcess) -> None:
    assert server.stop(signal.SIGTERM) == 0


def test_version_and_help() -> None:
    out = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("flame-object-cache ")
    out = subprocess.run([str(BINARY), "--help"], capture_output=True, text=True, check=True)
    assert "--endpoint" in out.stdout
