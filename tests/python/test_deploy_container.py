"""deploy/Dockerfile without a container engine (issue 14; docs/operations.md "Container image").

CI has no container runtime, and a buildah build would be a third full build of the project on
two cores (after the asan and release builds) inside a fresh Debian root: not affordable in its
time budget. This test runs the Dockerfile's own commands outside a container instead:

* the build stage: the build context (the checkout minus .dockerignore) is copied to a temporary
  directory standing for `/src`, and the stage's RUN commands run there as written, with its ENV
  and `/out` mapped to a temporary directory (apt-get lines are checked, not run: their packages
  must be installed here or exist in Debian's archive);
* the runtime stage: its packages exist in Debian 12, every library the staged binaries load is
  either bundled under the prefix or comes from those packages (or the base image's essential
  packages), its RUN that writes the configuration runs with `/etc/flame` mapped, and the staged
  server runs with that configuration as a non-root user (setpriv) with metrics on: /health,
  /metrics and the status page answer, and a put/get round trip works.

It takes a full release build in the copy (tests off); ccache (CCACHE_BASEDIR set to the copy)
can reuse the suite's own release build. Measured cold: 21 minutes on a shared 2-core machine.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from conftest import ROOT, ServerProcess, free_loopback_port

DOCKERFILE = ROOT / "deploy/Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def parse(text: str) -> list[Stage]:
    """The stages of a Dockerfile: instructions with continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if not pending and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if raw.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    stages: list[Stage] = []
    for line in lines:
        op, _, arg = line.strip().partition(" ")
        op = op.upper()
        if op == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", arg.strip(), re.I)
            assert m, line
            stages.append(Stage(m.group(1), m.group(2)))
        else:
            stages[-1].instructions.append((op, arg.strip()))
    return stages


def context_copy(dest: Path) -> None:
    """The build context: tracked and untracked files of the checkout minus .dockerignore."""
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")

    def ignored(path: str) -> bool:
        parts = path.split("/")
        for p in patterns:
            p = p.rstrip("/")
            if p.startswith("**/"):
                if any(fnmatch.fnmatch(part, p[3:]) for part in parts):
                    return True
            elif fnmatch.fnmatch(path, p) or fnmatch.fnmatch(parts[0], p):
                return True
        return False

    for f in files:
        if not f or ignored(f) or not (ROOT / f).exists():
            continue
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, target, follow_symlinks=False)


def apt_packages(command: str) -> list[str]:
    m = re.search(r"apt-get install ([^&;]*)", command)
    assert m, command
    return [w for w in shlex.split(m.group(1)) if not w.startswith("-")]


def in_debian(package: str) -> bool:
    """Installed here (this machine is Debian 12, like the image), or known to apt."""
    if subprocess.run(["dpkg-query", "-W", package], capture_output=True).returncode == 0:
        return True
    r = subprocess.run(["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True)
    return r.returncode == 0 and f"Package: {package}" in r.stdout


def closure(packages: list[str]) -> set[str]:
    """The packages and their (recursive) Depends/PreDepends, as apt would install them."""
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages],
                       capture_output=True, text=True, check=True)
    return {line.strip().split(":")[0] for line in r.stdout.splitlines()
            if line and not line.startswith(" ") and not line.startswith("<")}


def essential() -> set[str]:
    """What a debian:12-slim image has without apt-get: the Essential and required packages."""
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Essential} ${Priority}\n"],
                       capture_output=True, text=True, check=True)
    names = {w[0] for w in (line.split() for line in r.stdout.splitlines())
             if len(w) >= 2 and ("yes" in w[1:] or "required" in w[1:])}
    return closure(sorted(names))


def owner(path: str) -> str:
    for candidate in (path, os.path.realpath(path)):
        r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
        # /lib is a symlink to /usr/lib on merged-/usr systems; dpkg knows one of the spellings
        alt = candidate[4:] if candidate.startswith("/usr/") else "/usr" + candidate
        r = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    return ""


@pytest.fixture
def work() -> Iterator[Path]:
    """A scratch directory the non-root user can traverse (pytest's tmp_path is 0700 root's)."""
    path = Path(tempfile.mkdtemp(prefix="foc-image-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_dockerfile_stages_outside_a_container(work: Path) -> None:
    tmp_path = work
    stages = parse(DOCKERFILE.read_text())
    assert [s.base for s in stages] == ["debian:12", "debian:12-slim"]
    build, runtime = stages
    assert build.name == "build"

    # ---- build stage ----
    src = tmp_path / "src"
    out = tmp_path / "out"
    assert build.all("WORKDIR") == ["/src"] and build.all("COPY") == [". ."]
    context_copy(src)
    assert not (src / ".venv").exists() and not (src / "build").exists() and (src / "CMakeLists.txt").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLAME_", "FOC_"))}
    env["CCACHE_BASEDIR"] = str(src)
    # The container build uses every core; here, the test command's job count (scripts/test.sh)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", os.environ.get("FOC_JOBS", str(os.cpu_count() or 2)))
    for arg in build.all("ENV"):
        name, _, value = arg.partition("=")
        env[name] = value
    assert env.get("FOC_SKIP_TEST_TOOLS") == "1"
    runs = build.all("RUN")
    assert len(runs) == 2
    for package in apt_packages(runs[0]):
        assert subprocess.run(["dpkg-query", "-W", package], capture_output=True).returncode == 0, package
    command = runs[1].replace("/out", str(out))
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=src, env=env, capture_output=True,
                       text=True, timeout=3000)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    (copy_from,) = [a for a in runtime.all("COPY") if a.startswith("--from=build")]
    staged_from, staged_to = copy_from.split()[1:]
    staged = out / staged_from.removeprefix("/out/")
    assert staged_to == "/usr/local/flame"
    server = staged / "bin/flame-object-cache"
    cli = staged / "bin/flame-cache"
    assert server.exists() and cli.exists() and (staged / "include/flame_object_cache/cache_client.h").exists()

    # ---- runtime stage: packages, libraries, user, configuration ----
    runtime_runs = runtime.all("RUN")
    packages = apt_packages(runtime_runs[0])
    missing = [p for p in packages if not in_debian(p)]
    assert not missing, f"not in Debian's archive: {missing}"
    available = closure(packages) | essential()
    for binary in (server, cli):
        ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
        assert "not found" not in ldd, ldd
        for lib in re.findall(r"=> (/\S+)", ldd):
            if lib.startswith(str(staged)):
                continue  # bundled under the prefix by install.sh
            pkg = owner(lib)
            assert pkg in available, f"{binary.name} loads {lib} from {pkg or 'no package'}, " \
                                     "which the runtime stage does not install"
    assert "useradd --system --uid 10001" in runtime_runs[0]
    assert runtime.all("USER") == ["flame"], "the image runs as the non-root user flame"
    (config_run,) = [r for r in runtime_runs if "/etc/flame/flame-cluster.yaml" in r]
    etc = tmp_path / "etc"
    subprocess.run(["bash", "-euo", "pipefail", "-c", config_run.replace("/etc/flame", str(etc / "flame"))],
                   check=True)
    config = (etc / "flame/flame-cluster.yaml").read_text()
    assert "  metrics:\n    port: 9091\n" in config, "metrics are on in the image"
    assert set(runtime.all("EXPOSE")[0].split()) == {"9090", "9091"}
    entry = runtime.all("ENTRYPOINT")
    assert entry == ['["/usr/local/flame/bin/flame-object-cache"]']

    # ---- the staged server with the image's configuration, as a non-root user ----
    # Only what a container gives differently is replaced: loopback ports (the image binds
    # 0.0.0.0:9090/9091 in its own network namespace), the storage directory, the interface.
    local = tmp_path / "local.yaml"
    flight_port, metrics_port = free_loopback_port(), free_loopback_port()
    local.write_text(config.replace("grpc://0.0.0.0:9090", f"grpc://127.0.0.1:{flight_port}")
                     .replace("network_interface: eth0", "network_interface: lo")
                     .replace("/var/lib/flame/cache", str(tmp_path / "cache"))
                     .replace("port: 9091", f"port: {metrics_port}").replace("bind: 0.0.0.0", "bind: 127.0.0.1"))
    (tmp_path / "cache").mkdir()
    if os.getuid() == 0:
        os.chown(tmp_path / "cache", 65534, 65534)
    runner = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] if os.getuid() == 0 else []
    wrapper = tmp_path / "run-as-nobody.sh"
    wrapper.write_text(f"#!/bin/sh\nexec {' '.join(shlex.quote(a) for a in runner)} {shlex.quote(str(server))} \"$@\"\n")
    wrapper.chmod(0o755)
    proc = ServerProcess(["--config", str(local)], binary=wrapper)
    try:
        assert proc.metrics_url == f"http://127.0.0.1:{metrics_port}/metrics"
        base = proc.metrics_url.removesuffix("/metrics")
        with urllib.request.urlopen(base + "/health", timeout=10) as h:
            assert h.read() == b"ok\n"
        with urllib.request.urlopen(base + "/", timeout=10) as page:
            assert b"flame-object-cache" in page.read()
        put = subprocess.run([str(cli), "--endpoint", proc.endpoint, "put", "img/s/k", "-"], input=b"hi",
                             capture_output=True, timeout=60)
        assert put.returncode == 0, put.stderr
        got = subprocess.run([str(cli), "--endpoint", proc.endpoint, "get", "img/s/k"], capture_output=True,
                             timeout=60)
        assert got.stdout == b"hi"
        if os.getuid() == 0:
            files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
            assert files and all(p.stat().st_uid == 65534 for p in files), "written by the non-root user"
    finally:
        assert proc.stop() == 0
