"""Real PostgreSQL and Kafka servers for the test suite, run as local processes.

``tests.servers.postgres.PostgresServer`` and ``tests.servers.kafka.KafkaServer``
are used by tests/conftest.py when no Docker engine is reachable, and can be
used by hand (``python -m tests.servers.kafka run``) or by benchmarks.

Submodules are not imported here so that ``python -m tests.servers.kafka``
runs without a double-import warning.
"""
