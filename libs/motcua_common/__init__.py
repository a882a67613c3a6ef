"""Shared plumbing of the Một Cửa services: settings, MongoDB, events, outbox and relay,
idempotent consumers, the broker topology, authentication, HTTP helpers, metrics, logs."""
