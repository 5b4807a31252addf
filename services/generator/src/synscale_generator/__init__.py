"""synscale generator service: domain code, gRPC servicer and Kafka worker."""
