"""The C++ client as a package (docs/cpp-client.md, "Install and link"): `cmake --install` of the
build tree into a temporary prefix, then examples/cpp built against it the two documented ways
(find_package(FlameObjectCache) and pkg-config) and run against the real server, as is the
in-tree build of the same example. The docs show the example file verbatim."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BINARY, ROOT, ServerProcess

BUILD = BINARY.parents[2]  # build/<preset>
EXAMPLE = ROOT / "examples/cpp"


def sh(*cmd: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("prefix")
    # The library (and the example) may not be part of what the caller built: build them.
    sh("cmake", "--build", BUILD, "--target", "flame_object_cache_client", "cache_example",
       "flame-object-cache", "flame-cache")
    sh("cmake", "--install", BUILD, "--prefix", target)
    return target


def check_example_output(out: str) -> None:
    lines = out.splitlines()
    assert re.fullmatch(r"example/session/\S+ v2: base\+delta", lines[0]), out
    assert re.fullmatch(r"example/session/\S+: 3 rows", lines[1]), out
    assert re.fullmatch(r"\d+ objects on the server", lines[2]), out
    assert lines[3] == "after delete: not found", out


def test_install_layout(prefix: Path) -> None:
    assert (prefix / "include/flame_object_cache/cache_client.h").is_file()
    assert (prefix / "include/flame_object_cache/client_cache.h").is_file()
    assert (prefix / "include/flame_object_cache/detail/key/key.h").is_file()
    assert (prefix / "include/flame_object_cache/detail/object/object.h").is_file()
    assert (prefix / "include/flame_object_cache/detail/base/mutex.h").is_file()
    assert (prefix / "include/flame_object_cache/detail/cache/lru_cache.h").is_file()
    assert (prefix / "lib/libflame_object_cache_client.so.0").exists()
    assert (prefix / "lib/cmake/FlameObjectCache/FlameObjectCacheConfig.cmake").is_file()
    assert (prefix / "lib/cmake/FlameObjectCache/FlameObjectCacheConfigVersion.cmake").is_file()
    assert (prefix / "lib/pkgconfig/flame-object-cache.pc").is_file()
    # The installed headers include nothing from the source tree that is not installed.
    for header in (prefix / "include").rglob("*.h"):
        for inc in re.findall(r'#include "([^"]+)"', header.read_text()):
            found = [(prefix / "include" / inc), (prefix / "include/flame_object_cache/detail" / inc)]
            assert any(p.is_file() for p in found), f"{header} includes {inc}, not installed"


def test_example_against_installed_package(prefix: Path, tmp_path: Path,
                                           server: ServerProcess) -> None:
    build = tmp_path / "build"
    sh("cmake", "-S", EXAMPLE, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
       f"-DCMAKE_PREFIX_PATH={prefix}", f"-DFlameObjectCache_PYTHON={sys.executable}")
    sh("cmake", "--build", build)
    check_example_output(sh(build / "cache_example", server.endpoint))


def test_example_with_pkg_config(prefix: Path, tmp_path: Path, server: ServerProcess) -> None:
    assert shutil.which("pkg-config"), "pkg-config missing: scripts/bootstrap.sh installs it"
    env = {**os.environ, "PKG_CONFIG_PATH": str(prefix / "lib/pkgconfig")}
    flags = sh("pkg-config", "--cflags", "--libs", "flame-object-cache", env=env).split()
    exe = tmp_path / "cache_example"
    sh("c++", "-O1", EXAMPLE / "cache_example.cc", "-o", exe, *flags)
    check_example_output(sh(exe, server.endpoint))


def test_in_tree_example(prefix: Path, server: ServerProcess) -> None:
    check_example_output(sh(BUILD / "examples/cpp/cache_example", server.endpoint))


def test_docs_show_the_example_verbatim() -> None:
    doc = (ROOT / "docs/cpp-client.md").read_text()
    blocks = re.findall(r"```cpp\n(.*?)```", doc, re.S)
    assert (EXAMPLE / "cache_example.cc").read_text() in blocks, \
        "docs/cpp-client.md must show examples/cpp/cache_example.cc verbatim"
