"""Time from `twin infra up` to healthy, and RSS once healthy, for each local server.

Runs in a private state dir on the default ports (stop a running stack first). Round 1 of each
server starts from an empty data dir (cold); the next rounds restart on existing data (warm).
Prints a Markdown table for docs/benchmarks.md.

    .venv/bin/python bench/infra_startup.py --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from localstack import Infra
from twin.settings import Settings


def measure(infra: Infra, name: str, rounds: int) -> dict[str, list[float]]:
    cold: list[float] = []
    warm: list[float] = []
    rss: list[float] = []
    for i in range(rounds):
        begin = time.monotonic()
        infra.up([name])
        took = time.monotonic() - begin
        (cold if i == 0 else warm).append(took)
        time.sleep(3)  # let the JVM settle after its first requests
        record = infra.record(infra.servers[name])
        assert record is not None
        rss.append(record.rss_bytes() / 2**20)
        infra.down([name])
    return {"cold": cold, "warm": warm, "rss": rss}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="kafka,registry,cassandra,elasticsearch")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="twin-bench-", dir="/var/tmp") as tmp:
        settings = Settings(infra={"state_dir": Path(tmp)})
        infra = Infra(settings)
        names = args.only.split(",")
        infra.fetch(names)
        results = {name: measure(infra, name, args.rounds) for name in names}

    print("| server | cold start to healthy (s) | warm restart (s, median) | RSS healthy (MiB) |")
    print("| --- | --- | --- | --- |")
    for name, r in results.items():
        warm = f"{statistics.median(r['warm']):.1f}" if r["warm"] else "-"
        print(f"| {name} | {r['cold'][0]:.1f} | {warm} | {statistics.median(r['rss']):.0f} |")


if __name__ == "__main__":
    main()
