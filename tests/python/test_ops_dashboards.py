"""deploy/prometheus/alerts.yaml passes `promtool check rules`, and every metric that it or the
Grafana dashboard (deploy/grafana/flame-object-cache.json) uses is one the real server exports."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request

from conftest import ROOT, ServerProcess

ALERTS = ROOT / "deploy/prometheus/alerts.yaml"
DASHBOARD = ROOT / "deploy/grafana/flame-object-cache.json"
METRIC_RE = re.compile(r"\b((?:foc|process)_[a-z_]+)")


def exported_metric_names() -> set[str]:
    server = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none", "--metrics-port", "0"])
    try:
        with urllib.request.urlopen(server.metrics_url, timeout=10) as r:
            text = r.read().decode()
    finally:
        assert server.stop() == 0
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            if kind == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names


def test_alert_rules_pass_promtool() -> None:
    out = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 8 rules found" in out.stdout


def test_dashboard_and_alerts_use_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert dashboard["uid"] == "flame-object-cache" and len(exprs) >= 10
    used = {m for e in exprs for m in METRIC_RE.findall(e)} | set(METRIC_RE.findall(ALERTS.read_text()))
    missing = used - exported_metric_names()
    assert not missing, f"not exported by the server: {sorted(missing)}"
    for expr in exprs:  # each expression parses as PromQL (promtool's own parser)
        out = subprocess.run(["promtool", "check", "rules", "/dev/stdin"], capture_output=True, text=True,
                             input=json.dumps({"groups": [{"name": "g", "rules": [
                                 {"record": "x:y", "expr": expr.replace("$__rate_interval", "5m")}]}]}))
        assert out.returncode == 0, (expr, out.stdout + out.stderr)
