"""A writer process for test_storage_kill9.py: PUTs and PATCHes its own keys over Flight until
the server goes away, logging each attempt before it is sent and each acknowledgement after
it arrives (one JSON object per line, flushed)."""

from __future__ import annotations

import hashlib
import json
import random
import sys

import pyarrow as pa
import pyarrow.flight as flight

from flight_wire import patch, put


def main() -> None:
    endpoint, writer_id, log_path, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    rng = random.Random(seed)
    keys = [f"kill/w{writer_id}/obj{i}" for i in range(3)]
    client = flight.connect(endpoint)
    with open(log_path, "a", buffering=1) as log:
        n = 0
        while True:
            key = rng.choice(keys)
            op = "put" if rng.random() < 0.3 else "patch"
            size = rng.choice([10, 1000, 64 * 1024, 512 * 1024])
            data = hashlib.sha256(f"{seed}:{n}".encode()).digest() * (size // 32 + 1)
            data = data[:size]
            n += 1
            digest = hashlib.sha256(data).hexdigest()
            log.write(json.dumps({"event": "attempt", "key": key, "op": op, "sha": digest}) + "\n")
            try:
                result = put(client, key, data, 5) if op == "put" else patch(client, key, data, 5)
            except (pa.ArrowException, AssertionError) as e:  # NOT_FOUND, or the server died
                if isinstance(e, pa.ArrowKeyError) or "not found" in str(e).lower():
                    log.write(json.dumps({"event": "missing", "key": key}) + "\n")
                    continue
                return
            except OSError:
                return
            log.write(json.dumps({"event": "ack", "key": key, "op": op, "sha": digest,
                                  "version": result["version"]}) + "\n")


if __name__ == "__main__":
    main()
