"""Stubs generated from protos/presence/v1/presence.proto (see generate_stubs.sh)."""
