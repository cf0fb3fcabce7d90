"""flame-cache (tools/flame_cache.cc) against the real server binary: round trips and exit codes,
plain and over TLS/mTLS (--ca-file, --cert, --key; certificates of the shared `pki` fixture)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.ipc as ipc
import pytest

from conftest import ROOT, Pki, ServerProcess, tls_stored_keys

CLI = Path(os.environ.get("FOC_CLI_BINARY", ROOT / "build/release/tools/flame-cache"))


def run(server: ServerProcess | None, *args: str, stdin: bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: build it first (cmake --build --preset release)")
    # Without the developer's FLAME_CACHE_ENDPOINT / FLAME_CA_FILE: only what the test passes.
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLAME_")}
    full_env.update(env or {})
    cmd = [str(CLI)]
    if server is not None:
        cmd += ["--endpoint", server.endpoint]
    return subprocess.run(cmd + list(args), input=stdin, capture_output=True, env=full_env,
                          timeout=60)


def key_version(out: bytes) -> tuple[str, int]:
    key, version = out.decode().strip().split("\t")
    return key, int(version)


def test_put_get_patch_stat_delete(server: ServerProcess, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"hello \x00 world")
    r = run(server, "put", "app/s", str(src))
    assert r.returncode == 0, r.stderr
    key, version = key_version(r.stdout)
    assert key.startswith("app/s/") and version == 1

    r = run(server, "get", key)
    assert r.returncode == 0 and r.stdout == b"hello \x00 world"

    r = run(server, "patch", key, "-", stdin=b"+delta")
    assert r.returncode == 0, r.stderr
    assert key_version(r.stdout) == (key, 2)

    out = tmp_path / "out.bin"
    assert run(server, "get", key, "-o", str(out)).returncode == 0
    assert out.read_bytes() == b"hello \x00 world+delta"  # base, then deltas

    r = run(server, "stat", key)
    assert r.returncode == 0
    stat = dict(line.split(": ", 1) for line in r.stdout.decode().splitlines())
    assert stat["version"] == "2" and stat["kind"] == "opaque"
    assert stat["deltas"] == "1" and stat["total_bytes"].split()[0] == str(len(b"hello \x00 world+delta"))

    r = run(server, "--json", "ls")
    size = len(b"hello \x00 world+delta")
    assert json.loads(r.stdout)["objects"] == [{"key": key, "version": 2, "kind": "opaque", "bytes": size}]

    r = run(server, "delete", "app/*")
    assert r.returncode == 0 and r.stdout.decode().splitlines() == [f"deleted {key}", "1 object deleted"]
    r = run(server, "get", key)
    assert r.returncode == 3
    assert key in r.stderr.decode() and "not found" in r.stderr.decode()
    assert json.loads(run(server, "ls", "--json").stdout) == {"objects": [], "count": 0, "total_bytes": 0}


def test_upload_download_multi_mib(server: ServerProcess, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 77)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    r = run(server, "upload", "app/files/big", str(src))
    assert r.returncode == 0, r.stderr
    assert key_version(r.stdout) == ("app/files/big", 1)
    dst = tmp_path / "copy.bin"
    r = run(server, "download", "app/files/big", str(dst))
    assert r.returncode == 0, r.stderr
    assert dst.read_bytes() == data

    # A failed download leaves no file behind: an object with a delta is not a plain file.
    assert run(server, "patch", "app/files/big", "-", stdin=b"d").returncode == 0
    failed = tmp_path / "failed.bin"
    r = run(server, "download", "app/files/big", str(failed))
    assert r.returncode == 1 and "app/files/big" in r.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin", "copy.bin"]

    r = run(server, "download", "app/files/missing", str(failed))
    assert r.returncode == 3 and "app/files/missing" in r.stderr.decode()
    assert not failed.exists()


def test_interoperates_with_pyarrow_flight(server: ServerProcess, tmp_path: Path) -> None:
    # A native table written with pyarrow reads back through the CLI as an IPC stream.
    table = pa.table({"x": [1, 2, 3]}).replace_schema_metadata(
        {"flame.cache.format": "arrow-table-v1", "flame.cache.version": "0"})
    client = flight.connect(server.endpoint)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path("app/t/table"), table.schema)
    writer.write_table(table)
    writer.done_writing()
    reader.read()
    writer.close()
    client.close()
    r = run(server, "get", "app/t/table")
    assert r.returncode == 0, r.stderr
    back = ipc.open_stream(r.stdout).read_all()
    assert back.column("x").to_pylist() == [1, 2, 3]
    r = run(server, "stat", "app/t/table")
    assert "kind: table" in r.stdout.decode()
    r = run(server, "ls", "app/t")
    assert r.stdout.decode().splitlines()[1].split()[:3] == ["app/t/table", "1", "table"]


def test_endpoint_from_environment(server: ServerProcess) -> None:
    r = run(None, "put", "app/env/k", "-", stdin=b"x",
            env={"FLAME_CACHE_ENDPOINT": server.endpoint})
    assert r.returncode == 0, r.stderr
    assert key_version(r.stdout) == ("app/env/k", 1)


def test_usage_errors_exit_2() -> None:
    assert run(None).returncode == 2                        # no subcommand
    assert run(None, "frobnicate").returncode == 2          # unknown subcommand
    assert run(None, "get").returncode == 2                 # missing argument
    assert run(None, "--timeout", "-1", "ls").returncode == 2
    assert run(None, "--cert", "c.pem", "ls").returncode == 2  # --cert without --key
    r = run(None, "--help")
    assert r.returncode == 0 and b"upload" in r.stdout


def test_errors_exit_1_and_name_the_key(server: ServerProcess, tmp_path: Path) -> None:
    r = run(server, "put", "app/*", "-", stdin=b"x")
    assert r.returncode == 1 and "app/*" in r.stderr.decode()
    r = run(server, "patch", "app/s/none", "-", stdin=b"x")
    assert r.returncode == 3 and "app/s/none" in r.stderr.decode()
    # A missing input file is a usage error (2) for put, patch and upload alike.
    for cmd in ("put", "patch", "upload"):
        r = run(server, cmd, "app/s", str(tmp_path / "no-such-file"))
        assert r.returncode == 2, (cmd, r)
        assert r.stderr.decode() == f"flame-cache: {cmd} app/s: no such file: {tmp_path / 'no-such-file'}\n"
    # Nothing listening there.
    r = subprocess.run([str(CLI), "--endpoint", "grpc://127.0.0.1:1", "--timeout", "5",
                        "get", "app/s/o"], capture_output=True, timeout=60)
    assert r.returncode == 1 and "app/s/o" in r.stderr.decode()


def test_tls_put_get_with_ca_file(start_tls_server: Callable[..., ServerProcess], pki: Pki,
                                  tmp_path: Path) -> None:
    server = start_tls_server()
    port = server.endpoint.rsplit(":", 1)[1]
    ca = str(pki.ca)
    for endpoint in (server.endpoint, f"grpcs://127.0.0.1:{port}"):
        r = run(None, "--endpoint", endpoint, "--ca-file", ca, "--timeout", "10",
                "put", "app/tls/obj", "-", stdin=b"secret \x00 bytes")
        assert r.returncode == 0, r.stderr
        assert key_version(r.stdout)[0] == "app/tls/obj"
        r = run(None, "--endpoint", endpoint, "--ca-file", ca, "get", "app/tls/obj")
        assert r.returncode == 0 and r.stdout == b"secret \x00 bytes", r.stderr
    # FLAME_CA_FILE is the default of --ca-file.
    r = run(None, "--endpoint", f"grpcs://127.0.0.1:{port}", "patch", "app/tls/obj", "-",
            stdin=b"+d", env={"FLAME_CA_FILE": ca})
    assert r.returncode == 0, r.stderr
    assert key_version(r.stdout) == ("app/tls/obj", 3)
    data = os.urandom(2 * 1024 * 1024 + 5)
    (tmp_path / "big.bin").write_bytes(data)
    r = run(None, "--endpoint", server.endpoint, "--ca-file", ca, "upload", "app/tls/big",
            str(tmp_path / "big.bin"))
    assert r.returncode == 0, r.stderr
    r = run(None, "--endpoint", server.endpoint, "--ca-file", ca, "download", "app/tls/big",
            str(tmp_path / "copy.bin"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "copy.bin").read_bytes() == data
    assert tls_stored_keys(server, pki) == ["app/tls/big", "app/tls/obj"]

    # Refused: no CA (gRPC's default roots), an unrelated CA, plaintext to the TLS port.
    for args in ([], ["--ca-file", str(pki.path("other-ca.crt"))]):
        r = run(None, "--endpoint", server.endpoint, *args, "--timeout", "5",
                "put", "app/tls/refused", "-", stdin=b"x")
        err = r.stderr.decode()
        assert r.returncode == 1 and "app/tls/refused" in err and "certificate verify failed" in err, err
    r = run(None, "--endpoint", f"grpc://127.0.0.1:{port}", "--timeout", "5",
            "get", "app/tls/obj")
    assert r.returncode == 1 and "app/tls/obj" in r.stderr.decode() and r.stdout == b""
    r = run(None, "--endpoint", server.endpoint, "--ca-file", str(tmp_path / "missing.crt"), "ls")
    assert r.returncode == 1 and "missing.crt" in r.stderr.decode()
    assert tls_stored_keys(server, pki) == ["app/tls/big", "app/tls/obj"]


def test_mtls_with_cert_and_key(start_tls_server: Callable[..., ServerProcess], pki: Pki) -> None:
    server = start_tls_server(mtls=True)
    tls = ["--endpoint", server.endpoint, "--ca-file", str(pki.ca), "--timeout", "10"]
    mine = ["--cert", str(pki.path("client.crt")), "--key", str(pki.path("client.key"))]
    intruder = ["--cert", str(pki.path("intruder.crt")), "--key", str(pki.path("intruder.key"))]

    for refused in ([], intruder):
        r = run(None, *tls, *refused, "put", "app/m/obj", "-", stdin=b"x")
        assert r.returncode == 1 and "app/m/obj" in r.stderr.decode(), r.stderr
        assert run(None, *tls, *refused, "ls").returncode == 1
    assert tls_stored_keys(server, pki) == []

    r = run(None, *tls, *mine, "put", "app/m/obj", "-", stdin=b"mutual")
    assert r.returncode == 0, r.stderr
    assert key_version(r.stdout) == ("app/m/obj", 1)
    r = run(None, *tls, *mine, "get", "app/m/obj")
    assert r.returncode == 0 and r.stdout == b"mutual", r.stderr
    r = run(None, *tls, *mine, "ls")
    assert r.returncode == 0 and r.stdout.decode().splitlines()[1:] == [
        "app/m/obj         1  opaque           6 B", "1 object, 6 B"]
    r = run(None, *tls, *mine, "stat", "app/m/obj")
    assert r.returncode == 0 and "version: 1" in r.stdout.decode()
    assert tls_stored_keys(server, pki) == ["app/m/obj"]
    # The key of another certificate does not complete the handshake either.
    r = run(None, *tls, "--cert", str(pki.path("client.crt")), "--key", str(pki.path("intruder.key")),
            "get", "app/m/obj")
    assert r.returncode == 1 and r.stdout == b""
    assert run(None, *tls, *mine, "delete", "app/*").returncode == 0
    assert tls_stored_keys(server, pki) == []


# ---- users' experience (issue 14): listing, JSON, decoding, suggestions, quiet errors ----


def ok(r: subprocess.CompletedProcess[bytes]) -> str:
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def test_ls_by_whole_components_with_versions_sizes_and_totals(server: ServerProcess) -> None:
    ok(run(server, "put", "rl/s/a", "-", stdin=b"x" * 1536))
    ok(run(server, "patch", "rl/s/a", "-", stdin=b"y"))
    ok(run(server, "put", "rl/s/b", "-", stdin=b"z" * 10))
    ok(run(server, "put", "rl/s1/c", "-", stdin=b"w"))
    lines = ok(run(server, "ls", "rl/s")).splitlines()
    assert lines[0].split() == ["KEY", "VERSION", "KIND", "SIZE"]
    assert [line.split() for line in lines[1:-1]] == [["rl/s/a", "2", "opaque", "1.5", "KiB"],
                                                       ["rl/s/b", "1", "opaque", "10", "B"]]
    assert lines[-1] == "2 objects, 1.5 KiB"
    assert ok(run(server, "ls", "rl/s/")) == ok(run(server, "ls", "rl/s"))
    assert ok(run(server, "ls", "-b", "rl/s")).splitlines()[-1] == "2 objects, 1547"
    listed = json.loads(ok(run(server, "ls", "rl", "--json")))
    assert [o["key"] for o in listed["objects"]] == ["rl/s/a", "rl/s/b", "rl/s1/c"]
    assert {o["kind"] for o in listed["objects"]} == {"opaque"}
    assert listed["count"] == 3 and listed["total_bytes"] == 1537 + 10 + 1
    assert json.loads(ok(run(server, "--json", "ls", "rl/s/a")))["count"] == 1
    assert json.loads(ok(run(server, "--json", "ls", "rl/s/")))["count"] == 2


def test_json_on_every_command(server: ServerProcess, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"abc")
    assert json.loads(ok(run(server, "--json", "put", "j/s/k", str(src)))) == {"key": "j/s/k", "version": 1}
    assert json.loads(ok(run(server, "patch", "j/s/k", "-", "--json", stdin=b"d"))) == {"key": "j/s/k",
                                                                                       "version": 2}
    out = tmp_path / "out.bin"
    got = json.loads(ok(run(server, "--json", "get", "j/s/k", "-o", str(out))))
    assert got == {"key": "j/s/k", "version": 2, "bytes": 4, "file": str(out)} and out.read_bytes() == b"abcd"
    r = run(server, "--json", "get", "j/s/k")  # the bytes and the JSON would share stdout
    assert r.returncode == 2 and b"--json needs -o" in r.stderr
    assert json.loads(ok(run(server, "--json", "upload", "j/s/u", str(src)))) == {"key": "j/s/u", "version": 1}
    dest = tmp_path / "down.bin"
    assert json.loads(ok(run(server, "--json", "download", "j/s/u", str(dest)))) == {
        "key": "j/s/u", "file": str(dest), "bytes": 3}
    assert json.loads(ok(run(server, "--json", "stat", "j/s/k"))) == {
        "key": "j/s/k", "version": 2, "kind": "opaque", "deltas": 1, "total_bytes": 4}
    info = json.loads(ok(run(server, "--json", "info")))
    assert info["objects"] == 2 and info["version"] and info["requests"]["total"] > 0
    assert json.loads(ok(run(server, "--json", "delete", "j/s"))) == {
        "pattern": "j/s", "deleted": 2, "keys": ["j/s/k", "j/s/u"]}
    assert json.loads(ok(run(server, "--json", "delete", "j/*"))) == {"pattern": "j/*", "deleted": 0, "keys": []}


def test_get_decode_understands_the_sdk_formats(server: ServerProcess) -> None:
    from flame_object_cache import serialization

    def put(key: str, payload: bytes) -> None:
        ok(run(server, "put", key, "-", stdin=payload))

    put("d/s/raw", b"plain text\n")
    assert ok(run(server, "get", "--decode", "d/s/raw")) == (
        "base (version 1): raw bytes (11 B, no SDK format tag; as written by `flame-cache put`):\n"
        "plain text\n")
    put("d/s/pickle", serialization.encode_data({"a": 1}))
    out = ok(run(server, "get", "--decode", "d/s/pickle"))
    assert "a Python object (cloudpickle" in out and "Python SDK" in out
    put("d/s/table", serialization.encode_data(pa.table({"n": [1, 2, 3], "s": ["x", "y", "z"]})))
    out = ok(run(server, "get", "--decode", "d/s/table"))
    assert out.startswith("base (version 1): pyarrow.Table:\nn: int64\ns: string\n3 rows\n"), out
    assert '"x"' in out and "3" in out
    # A native table (no FLM tag: a real Arrow stream) is printed as a table too.
    table = pa.table({"x": [7, 8]}).replace_schema_metadata(
        {"flame.cache.format": "arrow-table-v1", "flame.cache.version": "0"})
    client = flight.connect(server.endpoint)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path("d/s/native"), table.schema)
    writer.write_table(table)
    writer.done_writing()
    reader.read()
    writer.close()
    client.close()
    out = ok(run(server, "get", "--decode", "d/s/native"))
    assert out.startswith("native Arrow table:\nx: int64\n2 rows\n") and "7" in out, out
    described = json.loads(ok(run(server, "--json", "get", "--decode", "d/s/pickle")))
    assert described["key"] == "d/s/pickle" and "cloudpickle" in described["description"]


def test_native_table_put_prints_no_stray_status_line(server: ServerProcess) -> None:
    table = pa.table({"x": [1]}).replace_schema_metadata({"flame.cache.format": "arrow-table-v1"})
    client = flight.connect(server.endpoint)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path("n/s/t"), table.schema)
    writer.write_table(table)
    writer.done_writing()
    reader.read()
    writer.close()
    client.close()
    ok(run(server, "stat", "n/s/t"))
    assert not [line for line in server.output if "status.cc" in line or line.strip() == "OK"], server.output


def test_info_reports_use_vs_limits_hits_evictions_uptime_version(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--storage", "none", "--max-memory", "64M")
    ok(run(server, "put", "i/s/a", "-", stdin=b"x" * 2048))
    ok(run(server, "get", "i/s/a"))
    doc = json.loads(ok(run(server, "--json", "info")))
    version = ok(run(None, "--version")).split()[-1]
    assert doc["version"] == version and doc["uptime_seconds"] > 0
    assert doc["objects"] == 1
    assert doc["memory"]["limit_bytes"] == 64 << 20 and 2048 <= doc["memory"]["used_bytes"] <= 64 << 20
    assert doc["disk"] == {"used_bytes": 0, "capacity_bytes": 0}
    assert doc["gets"]["full"] == 1 and doc["gets"]["hit_ratio"] == 0
    assert doc["evictions"] == {"memory": 0, "lost_objects": 0, "refused_writes": 0}
    assert doc["requests"]["by_rpc"]["DoPut"]["calls"] == 1
    assert doc["traffic"]["received_bytes"] == 2048
    text = ok(run(server, "info"))
    lines = text.splitlines()
    assert f"version: {version}" in lines and "objects: 1" in lines
    assert "memory:" in lines and "  limit_bytes: 67108864 (64.0 MiB)" in lines
    assert "  capacity_bytes: 0 (unlimited)" in lines and "  hit_ratio: 0.0" in lines
    # INFO is listed by ListActions
    with flight.FlightClient(server.endpoint.replace("grpc://", "grpc+tcp://")) as fc:
        assert "INFO" in {a.type for a in fc.list_actions()}


def test_unknown_commands_get_suggestions() -> None:
    r = run(None, "list")
    assert r.returncode == 2 and r.stderr.decode().splitlines()[0] == \
        "flame-cache: unknown command 'list'; did you mean 'ls'?"
    r = run(None, "--timeout", "3", "dowload", "a/b/c", "x")
    assert r.returncode == 2 and "did you mean 'download'?" in r.stderr.decode()
    r = run(None, "frobnicate")
    assert r.returncode == 2 and r.stderr.decode().splitlines()[0] == "flame-cache: unknown command 'frobnicate'"


def test_errors_have_the_documented_form_and_no_grpc_noise(
        start_tls_server: Callable[..., ServerProcess], server: ServerProcess) -> None:
    # Nothing listening: ls names its operation like every other command.
    r = run(None, "--endpoint", "grpc://127.0.0.1:1", "--timeout", "5", "ls", "app/s")
    err = r.stderr.decode()
    assert r.returncode == 1 and err.startswith("flame-cache: ls app/s: ") and err.count("\n") == 1, err
    r = run(None, "--endpoint", "grpc://127.0.0.1:1", "--timeout", "5", "ls")
    assert r.returncode == 1 and r.stderr.decode().startswith("flame-cache: ls: "), r.stderr
    # TLS to a plaintext port: one line from us, nothing from gRPC/absl.
    tls_endpoint = server.endpoint.replace("grpc://", "grpcs://")
    r = run(None, "--endpoint", tls_endpoint, "--timeout", "5", "get", "app/s/o")
    err = r.stderr.decode()
    assert r.returncode == 1 and err.count("\n") == 1 and err.startswith("flame-cache: get app/s/o: "), err
    assert "absl" not in err and "ssl_transport_security" not in err


def run_with_terminal_stderr(server: ServerProcess, *args: str) -> tuple[int, str]:
    """Runs the CLI with stderr on a pseudo-terminal (stdout a pipe); returns (rc, terminal text)."""
    import pty

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAME_")}
    proc = subprocess.Popen([str(CLI), "--endpoint", server.endpoint, *args], stdout=subprocess.PIPE,
                            stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    proc.stdout.read()
    # The terminal turns "\n" into "\r\n"; the bar redraws with "\r" and erases with ESC[K.
    text = b"".join(chunks).decode().replace("\r\n", "\n").replace("\x1b[K", "")
    return proc.wait(timeout=60), text


def test_progress_bars_on_a_terminal_only(server: ServerProcess, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(6 << 20))
    rc, shown = run_with_terminal_stderr(server, "upload", "p/s/big", str(src))
    assert rc == 0
    last = shown.split("\r")[-1]
    assert last.startswith("upload p/s/big [########################] 100% 6.0 MiB / 6.0 MiB  "), repr(shown)
    assert "/s  ETA 0:00" in last and last.endswith("\n")
    rc, shown = run_with_terminal_stderr(server, "download", "p/s/big", str(tmp_path / "back.bin"))
    assert rc == 0 and (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    assert shown.split("\r")[-1].startswith("download p/s/big [########################] 100% 6.0 MiB / 6.0 MiB")
    # Not a terminal, --no-progress, or below 4 MiB: nothing on stderr.
    r = run(server, "upload", "p/s/big", str(src))
    assert r.returncode == 0 and r.stderr == b""
    assert run_with_terminal_stderr(server, "--no-progress", "upload", "p/s/big", str(src)) == (0, "")
    small = tmp_path / "small.bin"
    small.write_bytes(b"s" * 1000)
    assert run_with_terminal_stderr(server, "upload", "p/s/small", str(small)) == (0, "")
