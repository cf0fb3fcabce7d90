"""deploy/cluster/compose.yaml without containers (no container runtime runs here): its three
cache services' commands and environment, with service names mapped to loopback ports, run
as real processes against a real etcd and S3 gateway — a write through one is read through
the others, and the Helm values example names what cluster mode needs."""

from __future__ import annotations

from typing import Any

import yaml
from conftest import ROOT, Etcd, S3_BUCKET, S3Gateway, ServerProcess, free_loopback_port, new_s3_prefix
from test_cluster import eventually

import flame_object_cache as foc
from flame_object_cache import Client

COMPOSE = ROOT / "deploy/cluster/compose.yaml"


def test_the_compose_cluster_serves_one_namespace(etcd: Etcd, s3_gateway: S3Gateway) -> None:
    spec: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"etcd", "s3", "s3-bucket", "cache-1", "cache-2", "cache-3"} <= set(services)
    bucket_prefix = "flame-cache/prod"
    mine = f"{S3_BUCKET}/{new_s3_prefix('compose')}"
    ports = {name: free_loopback_port() for name in ("cache-1", "cache-2", "cache-3")}

    def local(text: str) -> str:
        text = text.replace("http://etcd:2379", etcd.endpoint)
        text = text.replace("s3:7070", f"127.0.0.1:{s3_gateway.port}")
        text = text.replace(bucket_prefix, mine)
        for name, port in ports.items():
            text = text.replace(f"{name}:9090", f"127.0.0.1:{port}")
        return text

    servers: list[ServerProcess] = []
    try:
        for name in ("cache-1", "cache-2", "cache-3"):
            svc = services[name]
            assert svc["image"] == "flame-object-cache:local" and svc["build"]["dockerfile"] == "deploy/Dockerfile"
            args = [local(a) for a in svc["command"]]
            args[args.index("grpc://0.0.0.0:9090")] = f"grpc://127.0.0.1:{ports[name]}"
            env = {k: local(str(v)) for k, v in svc["environment"].items()}
            assert env["FLAME_CACHE_ETCD"] == etcd.endpoint
            env.update(s3_gateway.env)  # the gateway of the tests has its own credentials
            servers.append(ServerProcess(args, env=env))
        one, two, three = servers
        with Client(one.endpoint) as c1:
            ref = c1.put_object("app/s", {"from": "cache-1"})
        assert ref.endpoint == f"grpc://127.0.0.1:{ports['cache-1']}"  # --advertise
        for other in (two, three):
            with Client(other.endpoint) as c:
                at = foc.ObjectRef(other.endpoint, ref.key, 0)
                assert eventually("not served by every server", lambda: c.get_object(at)) == {"from": "cache-1"}
    finally:
        for s in servers:
            s.stop()


def test_the_helm_values_configure_cluster_mode() -> None:
    values = yaml.safe_load((ROOT / "deploy/cluster/helm-values.yaml").read_text())["objectCache"]
    env = {e["name"]: e for e in values["extraEnv"]}
    assert env["FLAME_CACHE_ETCD"]["value"].startswith("http://")
    assert env["FLAME_CACHE_STORAGE"]["value"].startswith("s3://")
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)
    assert values["replicas"] >= 3 and values["persistence"]["enabled"] is False
