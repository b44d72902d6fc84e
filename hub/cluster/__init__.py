"""Cluster mode: several hub nodes on one NATS JetStream cluster (the log, the lease, tokens, forwarding)."""
