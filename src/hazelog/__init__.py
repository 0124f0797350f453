"""hazelog: a message log of three Sanic services and a Hazelcast cluster."""

__version__ = "0.1.0"
