"""Shared pytest fixtures and helpers: real PostgreSQL, RabbitMQ and S3 (moto's server), a TCP
proxy that can cut a link, and a runner for real uvicorn servers on 127.0.0.1.

Loaded for every test run by `-p kubeserve_common.testing.plugin` (root pyproject.toml).
"""

import secrets as _secrets

# The internal secret of every service a test starts in-process: random per test run, so no test
# depends on a value written in the source (which the settings refuse).
TEST_INTERNAL_SECRET = _secrets.token_hex(32)
