"""The SDK as a new user meets it (issue 14): listing, stat/exists, progress bars, timeouts, the
CLI's raw bytes, short tracebacks, quiet gRPC, every documented endpoint scheme. Real server binary,
real CLI binary, real tqdm."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import ROOT, ServerProcess, hermetic_env
from sdk_support import client, flame_env, port_of, silent_port  # noqa: F401 - fixtures

import flame_object_cache as foc

CLI = Path(os.environ.get("FOC_CLI_BINARY", ROOT / "build/release/tools/flame-cache"))
PYTHON_DIR = ROOT / "python"


def cli(server: ServerProcess | None, *args: str, endpoint: str | None = None,
        stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: build it first (cmake --build --preset release)")
    cmd = [str(CLI), "--endpoint", endpoint or (server.endpoint if server else "")]
    return subprocess.run(cmd + list(args), input=stdin, capture_output=True, env=hermetic_env(), timeout=60)


def python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = hermetic_env(env)
    full["PYTHONPATH"] = os.pathsep.join([str(PYTHON_DIR), full.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=full, timeout=120)


# -- listing, stat, exists ----------------------------------------------------------------------
def test_list_objects_by_whole_components(client: foc.Client) -> None:
    a = client.put_object("rl/s", b"x" * 100)
    b = client.put_object("rl/s", {"k": 1})
    other_session = client.put_object("rl/s1", 1)
    other_app = client.put_object("rl2/s", 2)
    listed = client.list_objects("rl/s")
    assert [o.key for o in listed] == sorted([a.key, b.key])  # not rl/s1/..., sorted by key
    assert all(o.size > 0 and o.endpoint == client.endpoint for o in listed)
    assert next(o.size for o in listed if o.key == a.key) >= 100
    app = {o.key for o in client.list_objects("rl")}
    assert app == {a.key, b.key, other_session.key} == {o.key for o in client.list_objects("rl/*")}
    assert [o.key for o in client.list_objects(other_app.key)] == [other_app.key]
    assert {o.key for o in client.list_objects()} == {a.key, b.key, other_session.key, other_app.key}
    assert client.list_objects("nobody") == []
    with pytest.raises(ValueError, match="must not start with '.'"):
        client.list_objects(".rl/s")


def sent_bytes(server: ServerProcess) -> int:
    """The server's foc_payload_sent_bytes_total (payload bytes GET replies carried)."""
    assert server.metrics_url, "the test servers serve metrics on a free port (conftest)"
    with urllib.request.urlopen(server.metrics_url, timeout=10) as r:
        text = r.read().decode()
    m = re.search(r"^foc_payload_sent_bytes_total (\d+)$", text, re.M)
    assert m, text[:2000]
    return int(m.group(1))


def test_stat_and_exists(client: foc.Client) -> None:
    ref = client.put_object("st/s", b"y" * 1000)
    info = client.stat(ref.key)
    assert info.key == ref.key and info.kind == "opaque" and info.size >= 1000
    assert info.version == ref.version and info.deltas == 0
    patched = client.patch_object(ref, b"z")
    assert (client.stat(ref.key).version, client.stat(ref.key).deltas) == (patched.version, 1)
    table = client.put_object("st/s", pa.table({"x": list(range(10))}))
    tinfo = client.stat(table.key)
    assert tinfo.kind == "table" and tinfo.version == 1 and tinfo.size > 0
    client.update_object(table, pa.table({"x": [1]}))
    assert client.stat(table.key).version == 2
    assert client.exists(ref.key) and client.exists(table.key)
    assert not client.exists("st/s/missing")
    with pytest.raises(foc.ObjectNotFound):
        client.stat("st/s/missing")
    client.delete_objects("st/s")
    assert not client.exists(ref.key)
    with pytest.raises(ValueError):
        client.exists("st/s")  # not a full key


def test_stat_and_list_read_metadata_only(server: ServerProcess, client: foc.Client) -> None:
    """stat of a 64 MiB object sends none of its bytes: the server's payload-sent counter does
    not move (a GET would add 64 MiB), and listings carry kind, version and deltas."""
    big = client.put_object("big/s", b"\x01" * (64 << 20))
    table = client.put_object("big/s", pa.table({"x": [1, 2, 3]}))
    before = sent_bytes(server)
    info = client.stat(big.key)
    assert info.size >= 64 << 20 and info.version == big.version and info.kind == "opaque"
    assert sent_bytes(server) == before
    listed = {o.key: o for o in client.list_objects("big/s")}
    assert listed[big.key].kind == "opaque" and listed[big.key].version == big.version
    assert listed[table.key].kind == "table" and listed[table.key].deltas == 0
    assert sent_bytes(server) == before
    # The same through the CLI (stat and ls).
    r = cli(server, "--json", "stat", big.key)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"key": big.key, "version": big.version, "kind": "opaque", "deltas": 0,
                                    "total_bytes": info.size}
    r = cli(server, "--json", "ls", "big/s")
    assert r.returncode == 0, r.stderr
    kinds = {o["key"]: o["kind"] for o in json.loads(r.stdout)["objects"]}
    assert kinds == {big.key: "opaque", table.key: "table"}
    assert sent_bytes(server) == before


def test_module_functions_list_stat_exists(flame_env: ServerProcess) -> None:
    ref = foc.put_object("mod/s", "hello")
    assert [o.key for o in foc.list_objects("mod/s")] == [ref.key]
    assert foc.stat(ref.key).size > 0
    assert foc.exists(ref.key) and not foc.exists("mod/s/nope")


# -- progress -----------------------------------------------------------------------------------
def test_progress_on_module_functions_with_totals(flame_env: ServerProcess, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(3 << 20))
    ref = foc.upload_object("pg/s/file", str(src), progress=True)  # was a TypeError
    foc.download_object(ref, str(tmp_path / "out.bin"), progress=True)
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    blob = os.urandom(5 << 20)
    put = foc.put_object("pg/s", blob, progress=True)
    assert foc.get_object(put, progress=True) == blob
    err = capsys.readouterr().err
    for what in (f"upload {ref.key}", f"download {ref.key}", "put pg/s", f"get {put.key}"):
        bar = [line for line in err.replace("\r", "\n").splitlines() if line.startswith(what)]
        assert bar, (what, err)
        assert "100%" in bar[-1], bar[-1]  # a total was known
    assert "3.00M/3.00M" in err  # the download bar's total is the file's size


# -- timeouts -----------------------------------------------------------------------------------
def test_put_deadline_scales_with_size(client: foc.Client) -> None:
    from flame_object_cache.client import MIN_TRANSFER_RATE

    batches = [foc.client.ser.opaque_batch(b"z" * (4 << 20))]
    expected = client.timeout + batches[0].nbytes / MIN_TRANSFER_RATE
    assert client._write_timeout(batches, None) == pytest.approx(expected)
    assert client._write_timeout(batches, 7.0) == 7.0


def test_per_call_timeouts_are_used(silent_port: int) -> None:
    # Client deadlines of 10 minutes; each call's own 1 s deadline must be the one that fires.
    endpoint = f"grpc://127.0.0.1:{silent_port}"
    c = foc.Client(endpoint, timeout=600, transfer_timeout=600, retries=0)
    ref = foc.ObjectRef(endpoint, "to/s/o", 1)
    for call in (lambda: c.put_object("to/s", b"w" * (1 << 20), timeout=1),
                 lambda: c.get_object(ref, timeout=1),
                 lambda: c.update_object(ref, 1, timeout=1),
                 lambda: c.patch_object(ref, 1, timeout=1),
                 lambda: c.list_objects("to", timeout=1),
                 lambda: c.stat("to/s/o", timeout=1)):
        with pytest.raises(foc.CacheTimeout):
            call()


# -- the CLI's raw bytes ------------------------------------------------------------------------
def test_raw_bytes_of_the_cli(server: ServerProcess, client: foc.Client, tmp_path: Path) -> None:
    r = cli(server, "put", "raw/s", "-", stdin=b"plain bytes \x00 from the CLI")
    assert r.returncode == 0, r.stderr
    key = r.stdout.decode().split("\t")[0]
    ref = foc.ObjectRef(client.endpoint, key, 1)
    with pytest.raises(foc.DecodeError, match=r"raw=True") as info:
        client.get_object(ref)
    assert isinstance(info.value, foc.CacheError) and isinstance(info.value, ValueError)
    assert info.value.__cause__ is None and info.value.__context__ is None or info.value.__suppress_context__
    assert client.get_object(ref, raw=True) == b"plain bytes \x00 from the CLI"
    assert cli(server, "patch", key, "-", stdin=b"+d").returncode == 0
    ref2 = foc.ObjectRef(client.endpoint, key, 2)
    assert client.get_object(ref2, lambda base, deltas: base + b"".join(deltas), raw=True) == \
        b"plain bytes \x00 from the CLI+d"
    # The other way: what the SDK stored is FLM-tagged bytes to the CLI and to raw=True.
    mine = client.put_object("raw/s", {"a": 1})
    assert client.get_object(mine, raw=True).startswith(b"FLM\x00")
    assert client.get_object(mine) == {"a": 1}
    table = client.put_object("raw/s", pa.table({"x": [1, 2]}))
    raw_table = client.get_object(table, raw=True)
    assert isinstance(raw_table, pa.Table) and raw_table.column("x").to_pylist() == [1, 2]


# -- endpoints ----------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["grpc", "grpc+tcp", "http", "HTTP"])
def test_every_plaintext_scheme_reaches_the_server(server: ServerProcess, scheme: str) -> None:
    endpoint = f"{scheme}://127.0.0.1:{port_of(server.endpoint)}"
    with foc.Client(endpoint) as c:  # http:// was reported as ObjectNotFound
        ref = c.put_object("ep/s", scheme)
        assert c.get_object(ref) == scheme
        assert [o.key for o in c.list_objects("ep/s")] == [ref.key]
    r = cli(None, "put", "ep/s", "-", endpoint=endpoint, stdin=b"x")  # was exit code 3
    assert r.returncode == 0, r.stderr


def test_unknown_schemes_are_clear_errors(server: ServerProcess) -> None:
    port = port_of(server.endpoint)
    with pytest.raises(foc.InvalidRequest, match="unsupported scheme 'ftp'"):
        foc.Client(f"ftp://127.0.0.1:{port}")
    r = cli(None, "put", "ep/s", "-", endpoint=f"ftp://127.0.0.1:{port}", stdin=b"x")
    assert r.returncode == 1 and b"unsupported scheme 'ftp'" in r.stderr, r.stderr


# -- tracebacks and logs ------------------------------------------------------------------------
def test_uncaught_not_found_is_a_short_traceback(server: ServerProcess) -> None:
    r = python(f"""
        import flame_object_cache as foc
        c = foc.Client("{server.endpoint}")
        c.get_object(foc.ObjectRef("{server.endpoint}", "tb/s/missing", 1))
    """)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("flame_object_cache.errors.ObjectNotFound: ") and "tb/s/missing" in lines[-1]
    assert "direct cause" not in r.stderr and "During handling" not in r.stderr, r.stderr
    assert "pyarrow" not in r.stderr, r.stderr
    assert len(lines) <= 24, r.stderr  # was 37 lines of chained pyarrow internals


def test_grpc_logging_is_silent_unless_asked(server: ServerProcess) -> None:
    port = port_of(server.endpoint)
    code = f"""
        import os, flame_object_cache as foc
        print(os.environ["GRPC_VERBOSITY"])
        c = foc.Client("grpcs://127.0.0.1:{port}", timeout=10, retries=0)  # TLS to a plaintext port
        try:
            c.put_object("tls/s", 1)
        except foc.CacheUnavailable as e:
            print("unavailable")
    """
    r = python(code)
    assert r.stdout.split() == ["NONE", "unavailable"], r
    assert r.stderr == "", r.stderr  # no absl/ssl_transport_security lines
    asked = python(code, {"GRPC_VERBOSITY": "DEBUG"})
    assert asked.stdout.split() == ["DEBUG", "unavailable"]  # the user's setting is kept
    assert asked.stderr != ""  # and gRPC does talk then


