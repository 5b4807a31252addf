"""Container HEALTHCHECK: is this service's gRPC health endpoint SERVING?

Docker and plain container runtimes use it (Kubernetes uses its native gRPC probes
on the same endpoint instead). Exit 0 when healthy, 1 otherwise.
"""

from __future__ import annotations

import os
import sys

from synscale.grpc_server import check_health


def main() -> int:
    port = os.environ.get("SYNSCALE_GRPC_PORT", "50051")
    return 0 if check_health(f"127.0.0.1:{port}", timeout_s=3.0) else 1


if __name__ == "__main__":
    sys.exit(main())
