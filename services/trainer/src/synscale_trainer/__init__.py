"""synscale trainer service: domain code, gRPC servicer and Kafka worker."""
