"""deploy/install.sh into a temporary root, then the installed binary serves from there with
the Arrow libraries it bundled (RUNPATH $ORIGIN/../lib)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pyarrow.flight as flight
import pytest

from conftest import BINARY, LISTED_ACTIONS, ROOT, ServerProcess

PREFIX = "/opt/flame"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    build_dir = BINARY.parents[2]
    out = subprocess.run(
        [str(ROOT / "deploy/install.sh"), "--destdir", str(root), "--prefix", PREFIX, "--build-dir", str(build_dir)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return root


def test_layout_and_libraries(installed: Path) -> None:
    prefix = installed / PREFIX.lstrip("/")
    assert (prefix / "bin/flame-object-cache").is_file()
    conf = (prefix / "conf/flame-cluster.yaml").read_text()
    assert conf.count(f"{PREFIX}/data/cache") == 1
    assert "  metrics:\n    port: 9091\n    bind: 127.0.0.1\n" in conf  # metrics on, loopback only
    assert (prefix / "data/cache").is_dir() and (prefix / "logs").is_dir()
    libs = sorted(p.name for p in (prefix / "lib").iterdir())
    assert any(n.startswith("libarrow.so.") for n in libs) and any(n.startswith("libarrow_flight.so.") for n in libs)
    ldd = subprocess.run(["ldd", str(prefix / "bin/flame-object-cache")], capture_output=True, text=True, check=True).stdout
    for line in ldd.splitlines():
        if "libarrow" in line:
            assert str(prefix / "bin/../lib") in line, line
    unit = (installed / "etc/systemd/system/flame-object-cache.service").read_text()
    assert f"ExecStart={PREFIX}/bin/flame-object-cache --config {PREFIX}/conf/flame-cluster.yaml" in unit
    assert f"ReadWritePaths={PREFIX}/data {PREFIX}/logs" in unit
    for directive in ("User=flame", "MemoryMax=", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict"):
        assert directive in unit
    assert "@" not in unit.replace("multi-user", "")


def test_unit_passes_systemd_analyze(installed: Path) -> None:
    assert shutil.which("systemd-analyze"), "systemd-analyze missing: scripts/bootstrap.sh installs systemd"
    unit = installed / "etc/systemd/system/flame-object-cache.service"
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    # The ExecStart binary lives under the temporary root, not at PREFIX: ignore that finding.
    problems = [l for l in out.stderr.splitlines() if l.strip() and "is not executable" not in l]
    assert not problems, out.stderr


def test_installed_binary_serves(installed: Path, tmp_path: Path) -> None:
    prefix = installed / PREFIX.lstrip("/")
    conf = prefix / "conf/flame-cluster.yaml"
    server = ServerProcess(
        # The installed config turns metrics on, on loopback; port 0 here only to avoid clashes.
        ["--config", str(conf), "--endpoint", "grpc://127.0.0.1:0", "--storage", "none",
         "--metrics-port", "0"],
        env={"FLAME_HOME": str(prefix)},
        binary=prefix / "bin/flame-object-cache",
    )
    try:
        assert server.metrics_url.startswith("http://127.0.0.1:"), server.output
        client = flight.connect(server.endpoint)
        assert [a.type for a in client.list_actions()] == LISTED_ACTIONS
        client.close()
    finally:
        assert server.stop() == 0
    out = subprocess.run([str(prefix / "bin/flame-object-cache"), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("flame-object-cache ")
