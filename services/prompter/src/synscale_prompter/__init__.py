"""synscale prompter service: domain code, gRPC servicer and Kafka worker."""
