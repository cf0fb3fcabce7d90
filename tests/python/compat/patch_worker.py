"""Child process of test_concurrency: patches one object with flamepy 0.6.0.

Usage: patch_worker.py <endpoint> <key> <tag> <count>. Prints "ready", waits for a line on
stdin (so that all workers start together), patches <count> times with deltas (tag, i) and
prints the versions it was given as one JSON list.
"""

import json
import sys

from flamepy.core.cache import ObjectRef, patch_object


def main() -> None:
    endpoint, key, tag, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ref = ObjectRef(endpoint=endpoint, key=key, version=1)
    print("ready", flush=True)
    sys.stdin.readline()
    versions = []
    for i in range(count):
        new = patch_object(ref, (tag, i))
        assert new.key == key and new.endpoint == endpoint
        versions.append(new.version)
    print(json.dumps(versions), flush=True)


if __name__ == "__main__":
    main()
