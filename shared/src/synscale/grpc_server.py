"""A gRPC server with health checking and reflection, shared by the five services.

Servicers stay thin adapters over domain functions; this module owns the plumbing every
service needs the same way (health, reflection, graceful stop, error mapping).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from synscale.errors import InvalidInput, PreconditionFailed, Unavailable

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ServiceBinding:
    """What to register: the generated add_*_to_server function, the servicer, its full name."""

    add_to_server: Callable[[Any, grpc.Server], None]
    servicer: Any
    full_name: str  # e.g. "synscale.v1.Prompter"


def build_server(
    bindings: Sequence[ServiceBinding], address: str = "127.0.0.1:0", max_workers: int = 8,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """Create and start a server; returns it, its bound port and its health servicer."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [health.SERVICE_NAME, reflection.SERVICE_NAME]
    for b in bindings:
        b.add_to_server(b.servicer, server)
        names.append(b.full_name)
        health_servicer.set(b.full_name, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(names, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise Unavailable(f"could not bind gRPC server to {address}")
    server.start()
    log.info("gRPC serving %s on port %d", ", ".join(b.full_name for b in bindings), port)
    return server, port, health_servicer


def grpc_errors(fn: F) -> F:
    """Map domain errors to status codes so clients see INVALID_ARGUMENT, not UNKNOWN."""

    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except InvalidInput as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except (PreconditionFailed, FileNotFoundError) as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except Unavailable as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except KeyError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))

    return wrapper  # type: ignore[return-value]


def grpc_stream_errors(fn: F) -> F:
    """Like grpc_errors, for server-streaming methods (generators)."""

    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterable[Any]:
        try:
            yield from fn(self, request, context)
        except InvalidInput as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except (PreconditionFailed, FileNotFoundError) as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except Unavailable as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except KeyError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))

    return wrapper  # type: ignore[return-value]


def check_health(target: str, service: str = "", timeout_s: float = 5.0) -> bool:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError:
            return False
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)
