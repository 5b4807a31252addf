"""Run a command with real Kafka and MinIO up, and take them down afterwards.

`python -m synscale.testing.with_infra -- CMD ...` is what `make test` uses. Where
KAFKA_BOOTSTRAP_SERVERS and S3_ENDPOINT are already set, those servers are used and
nothing is started.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _launcher() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "deploy" / "local" / "launcher.py"
        if candidate.exists():
            return candidate
    raise SystemExit("deploy/local/launcher.py not found above " + str(here))


def _env_from(lines: str) -> dict[str, str]:
    out = {}
    for line in lines.splitlines():
        line = line.removeprefix("export ").strip()
        if "=" in line:
            k, _, v = line.partition("=")
            out[k] = v
    return out


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise SystemExit("usage: python -m synscale.testing.with_infra -- CMD [ARGS...]")
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("S3_ENDPOINT"):
        return subprocess.call(argv)
    launcher = _launcher()
    up = subprocess.run([sys.executable, str(launcher), "up"], stdout=subprocess.PIPE, text=True)
    if up.returncode != 0:
        subprocess.call([sys.executable, str(launcher), "down"])
        return up.returncode
    try:
        return subprocess.call(argv, env={**os.environ, **_env_from(up.stdout)})
    finally:
        subprocess.call([sys.executable, str(launcher), "down"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
