"""synscale scorer service: domain code, gRPC servicer and Kafka worker."""
