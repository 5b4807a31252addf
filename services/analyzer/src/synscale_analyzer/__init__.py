"""synscale analyzer service: domain code, gRPC servicer and Kafka worker."""
