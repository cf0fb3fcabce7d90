"""Issue 14: the status page at `/` of the metrics endpoint, rendered by a real headless Chromium
(Debian package `chromium`, installed by scripts/bootstrap.sh) against the real server binary.

The test checks the HTML itself (self-contained: no scripts, no external assets), the text Chromium
renders (`--dump-dom`), and that Chromium's screenshot is a non-blank PNG that shows the page's
usage bar; the screenshot's path is printed in the test output (docs/status-page.png is one).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
import urllib.request
import zlib
from pathlib import Path

import pytest

from conftest import ServerProcess

CHROMIUM = os.environ.get("FOC_CHROMIUM", "chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def chromium(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(CHROMIUM)
    if binary is None:
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap.sh installs Debian's chromium")
    with tempfile.TemporaryDirectory(prefix="foc-chromium-") as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args, url],
                              capture_output=True, text=True, timeout=180)


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Decodes an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes) to its pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(line)
        prev = line
    pixels = [tuple(r[x * bpp:x * bpp + 3]) for r in rows for x in range(width)]
    return width, height, pixels


@pytest.fixture
def busy_server(start_server) -> ServerProcess:
    """A memory-only server with a 16 MiB limit holding a few objects that were read back."""
    import flame_object_cache as foc

    server = start_server("--storage", "none", "--max-memory", "16M")
    with foc.Client(server.endpoint) as client:
        refs = [client.put_object("status/s", b"x" * (1 << 20)) for _ in range(3)]
        client.put_object("status/t", {"weights": list(range(1000))})
        for ref in refs:
            client.get_object(ref)
            client.get_object(ref)  # a not-modified reply: the hit ratio is above 0
    return server


def test_status_page_in_headless_chromium(busy_server: ServerProcess, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    url = busy_server.metrics_url.replace("/metrics", "/")
    assert url.startswith("http://127.0.0.1:"), busy_server.metrics_url

    # The HTML: one self-contained document, no scripts, nothing loaded from elsewhere.
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
        html = r.read().decode()
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html and "src=" not in html and "@import" not in html
    assert not re.search(r"""(href|url)\(?=?["']?(https?:)?//""", html), "no external assets"

    # What Chromium renders as text.
    dom = chromium(url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    text = re.sub(r"\s+", " ", text.replace("&nbsp;", " ").replace("·", " "))
    for expected in ("flame-object-cache", "Objects 4", "Memory (objects)", "of 16.0 MiB",
                     "Disk 0 B (no limit)", "DoPut 4", "From memory 0"):
        assert expected in text, (expected, text)
    hits = re.search(r"Hit ratio (\d+\.\d)% not modified", text)
    assert hits and float(hits.group(1)) > 0, text
    assert re.search(r"DoGet [1-9]", text), text
    version = re.search(r"version (\S+) up (\d+)d (\d\d):(\d\d):(\d\d)", text)
    assert version, text

    # The screenshot: produced, a PNG of the window's size, not blank, with the usage bar.
    shot = tmp_path / "status-page.png"
    r = chromium(url, f"--screenshot={shot}", "--window-size=900,760")
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (900, 760)
    colors: dict[tuple[int, ...], int] = {}
    for p in pixels:
        colors[p] = colors.get(p, 0) + 1
    background = max(colors.values())
    assert len(colors) > 20 and background < 0.97 * len(pixels), "the screenshot is blank"
    bar = sum(n for (r_, g, b), n in colors.items() if abs(r_ - 0xD9) < 8 and abs(g - 0x48) < 8 and abs(b - 0x0F) < 8)
    assert bar > 20, "the memory usage bar is not drawn"
    with capsys.disabled():
        print(f"\nstatus page screenshot: {shot}")
