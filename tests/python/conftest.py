"""Fixtures that start the real flame-object-cache binary for the Python tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow.flight as flight
import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("FOC_SERVER_BINARY", ROOT / "build/release/src/server/flame-object-cache"))
# What ListActions answers, in order: the types of kListedActions (src/protocol/protocol.h).
LISTED_ACTIONS = ["DELETE", "MEMBERS", "INFO"]
LISTEN_RE = re.compile(r"listening on (\S+)")
METRICS_RE = re.compile(r"flame-object-cache metrics at (\S+)")


def hermetic_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without the developer's Flame settings: FLAME_* and RUST_LOG
    are dropped and HOME points at a fresh empty directory (so ~/.flame is not read), unless
    `env` sets them."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("FLAME_") and k != "RUST_LOG"}
    full["HOME"] = tempfile.mkdtemp(prefix="foc-home-")
    full.update(env or {})
    return full


class ServerProcess:
    """A flame-object-cache process on a free loopback port; stopped by the fixture."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
        binary: Path | None = None,
    ):
        binary = binary or BINARY
        if not binary.exists():
            pytest.fail(f"server binary {binary} is missing: build it first (scripts/test.sh does)")
        # The servers of the tests are memory-only unless they name a storage or a config file:
        # the built-in default is a disk store under $HOME/.flame/cache (HOME is a fresh
        # temporary directory here, see hermetic_env).
        if not {"--storage", "--config", "-c", "--check-config"} & set(args):
            args = [*args, "--storage", "none"]
        # Without a configuration file the server serves metrics on 127.0.0.1:9091 (the
        # built-in default); the tests' servers take any free port instead so they never
        # meet on it (a busy default port only turns metrics off, which would hide bugs).
        if not {"--config", "-c", "--check-config", "--metrics-port"} & set(args) and not (
            env and ("FLAME_CACHE_METRICS_PORT" in env or "HOME" in env)
        ):
            args = [*args, "--metrics-port", "0"]
        self.args = [str(binary), *args]
        full_env = hermetic_env(env)
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env
        )
        self.output: list[str] = []
        self.endpoint = ""
        self.metrics_url = ""
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                mm = METRICS_RE.search(line)
                if mm:
                    self.metrics_url = mm.group(1)
                m = LISTEN_RE.search(line)
                if m and not ready.is_set():
                    self.endpoint = m.group(1)
                    ready.set()
            ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not ready.wait(timeout) or not self.endpoint:
            self.stop()
            pytest.fail("server did not start:\n" + "".join(self.output))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._pump.join(5)
        return self.proc.returncode


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    proc = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none"])
    yield proc
    proc.stop()


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    """Starts servers with extra command-line arguments (e.g. `--max-memory`, `--storage`) on a
    free loopback port; every server started through it is stopped at teardown."""
    started: list[ServerProcess] = []

    def start(*extra_args: str) -> ServerProcess:
        proc = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", *extra_args])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


# --- TLS material ------------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Pki:
    """Certificates generated by openssl for one test session (all PEM files in `dir`):
    `ca.crt` signed `server.crt` (for 127.0.0.1, ::1 and localhost) and `client.crt` (clientAuth);
    `other-ca.crt` is an unrelated CA that signed `intruder.crt` (a client certificate the servers
    must refuse)."""

    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot generate TLS certificates")
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=foc test CA",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, ext in (("server", "server.ext"), ("client", "client.ext")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", f"{name}.crt", cwd=d)
    # A second CA whose client certificate the servers must not accept.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other CA",
            "-keyout", "other-ca.key", "-out", "other-ca.crt", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=intruder",
            "-keyout", "intruder.key", "-out", "intruder.csr", cwd=d)
    openssl("x509", "-req", "-in", "intruder.csr", "-CA", "other-ca.crt", "-CAkey", "other-ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "client.ext", "-out", "intruder.crt", cwd=d)
    return Pki(d)


def tls_config(directory: Path, pki: Pki, scheme: str = "grpcs", mtls: bool = False) -> Path:
    """A server config file in `directory`: TLS on a free loopback port with `pki`'s server
    certificate; `mtls`: client certificates signed by `pki.ca` are required (cache.tls.ca_file)."""
    cfg = directory / f"flame-cluster-{scheme.replace('+', '-')}{'-mtls' if mtls else ''}.yaml"
    ca_line = f"    ca_file: {pki.ca}\n" if mtls else ""
    cfg.write_text(
        f"cache:\n  endpoint: {scheme}://127.0.0.1:0\n  storage: none\n  tls:\n"
        f"    cert_file: {pki.path('server.crt')}\n    key_file: {pki.path('server.key')}\n{ca_line}"
    )
    return cfg


def tls_stored_keys(server: ServerProcess, pki: Pki) -> list[str]:
    """The keys a TLS server holds, listed with plain pyarrow and `pki`'s client certificate
    (server-side evidence; a server without mTLS ignores the certificate)."""
    raw = flight.connect(server.endpoint, tls_root_certs=pki.read("ca.crt"),
                         cert_chain=pki.read("client.crt"), private_key=pki.read("client.key"))
    try:
        listing = raw.list_flights(options=flight.FlightCallOptions(timeout=10))
        return sorted(info.descriptor.path[0].decode() for info in listing)
    finally:
        raw.close()


@pytest.fixture
def start_tls_server(tmp_path: Path, pki: Pki) -> Iterator[Callable[..., ServerProcess]]:
    """Starts the real binary with TLS (`mtls=True`: client certificates required) from a config
    file written by `tls_config`; every server started is stopped at teardown and must exit 0."""
    started: list[ServerProcess] = []

    def start(scheme: str = "grpcs", mtls: bool = False) -> ServerProcess:
        proc = ServerProcess(["-c", str(tls_config(tmp_path, pki, scheme, mtls))])
        started.append(proc)
        assert proc.endpoint.startswith("grpc+tls://127.0.0.1:"), proc.endpoint
        return proc

    yield start
    codes = [proc.stop() for proc in started]
    assert codes == [0] * len(started), "".join(line for p in started for line in p.output)


# --- S3: Versity S3 Gateway --------------------------------------------------------------------

VERSITYGW = Path(os.environ.get("FOC_VERSITYGW", ROOT / ".tools/versitygw-v1.8.0/bin/versitygw"))
S3_BUCKET = "foc-test"
S3_ACCESS_KEY = "foc-test-access"
S3_SECRET_KEY = "foc-test-secret-key"


def free_loopback_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Gateway:
    """versitygw (built by scripts/bootstrap.sh) on a free loopback port, POSIX backend in
    `root` (each subdirectory a bucket); `stop()`/`start()` simulate an S3 outage."""

    def __init__(self, root: Path):
        if not VERSITYGW.exists():
            pytest.fail(f"versitygw {VERSITYGW} is missing: run scripts/bootstrap.sh")
        self.root = root
        (root / S3_BUCKET).mkdir(parents=True, exist_ok=True)
        self.port = free_loopback_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        import socket
        import time

        assert self.proc is None
        self.proc = subprocess.Popen(
            [str(VERSITYGW), "--access", S3_ACCESS_KEY, "--secret", S3_SECRET_KEY,
             "--port", f"127.0.0.1:{self.port}", "posix", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"versitygw exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("versitygw did not start listening")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def url(self, prefix: str, lease_seconds: int = 1) -> str:
        """The storage URL of `prefix` in the test bucket (credentials come from `env`)."""
        return (f"s3://{S3_BUCKET}/{prefix}?endpoint_override=127.0.0.1:{self.port}"
                f"&scheme=http&lease_seconds={lease_seconds}")

    @property
    def env(self) -> dict[str, str]:
        """The server's environment: credentials in the standard AWS variables; no
        instance-metadata lookups (they would leave loopback)."""
        return {"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Gateway]:
    """One gateway for the session; tests keep apart by using their own prefixes."""
    gw = S3Gateway(tmp_path_factory.mktemp("versitygw"))
    yield gw
    gw.stop()


_s3_prefixes = iter(range(1, 1 << 30))


def new_s3_prefix(name: str = "t") -> str:
    """A prefix no other test of this session uses."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', name)[:60]}-{os.getpid()}-{next(_s3_prefixes)}"


class Etcd:
    """A one-member etcd (Debian's etcd-server) on free loopback ports, data in `root`;
    `stop()`/`start()` simulate an etcd outage (the data directory stays)."""

    def __init__(self, root: Path):
        import shutil

        binary = shutil.which("etcd")
        if binary is None:
            pytest.fail("etcd is missing: scripts/bootstrap.sh installs Debian's etcd-server")
        self.binary, self.root = binary, root
        root.mkdir(parents=True, exist_ok=True)
        self.client, self.peer = free_loopback_port(), free_loopback_port()
        self.endpoint = f"http://127.0.0.1:{self.client}"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        import socket
        import time

        peer = f"http://127.0.0.1:{self.peer}"
        self.proc = subprocess.Popen(
            [self.binary, "--name=test", f"--data-dir={self.root}/data",
             f"--listen-client-urls={self.endpoint}", f"--advertise-client-urls={self.endpoint}",
             f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
             f"--initial-cluster=test={peer}", f"--log-outputs={self.root}/etcd.log",
             "--logger=zap"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"etcd exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.client), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("etcd did not start listening")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    """One etcd for the session; tests keep apart by their own cluster prefixes."""
    e = Etcd(tmp_path_factory.mktemp("etcd"))
    yield e
    e.stop()


def cluster_member(etcd: Etcd, gw: S3Gateway, prefix: str, *args: str,
                   cluster: dict[str, Any] | None = None) -> ServerProcess:
    """A server in cluster mode (docs/cluster.md) from a configuration file: records in
    `etcd` under `/<prefix>`, payloads in the gateway's bucket under `<prefix>`; `cluster`
    adds keys to `cache.cluster` (e.g. gc_interval_seconds)."""
    import yaml

    path = Path(tempfile.mkdtemp(prefix="foc-cluster-")) / "flame-cluster.yaml"
    path.write_text(yaml.safe_dump({"cache": {
        "endpoint": "grpc://127.0.0.1:0", "storage": gw.url(prefix),
        "cluster": {"etcd": [etcd.endpoint], "prefix": "/" + prefix, **(cluster or {})}}}))
    return ServerProcess(["--config", str(path), *args], env=gw.env)


def raw_get(endpoint: str, key: str, version: int) -> tuple[int, int]:
    """One DoGet (`<key>:<version>`) as flamepy sends it, with plain pyarrow: (rows, highest
    version sent, or `version` when nothing was sent: not modified)."""
    import pyarrow.flight as flight

    fc = flight.connect(endpoint)
    try:
        table = fc.do_get(flight.Ticket(f"{key}:{version}".encode())).read_all()
        versions = table.column("version").to_pylist() if table.num_rows else []
        return table.num_rows, max(versions, default=version)
    finally:
        fc.close()
