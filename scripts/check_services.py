"""Fail loudly (exit 1) when the Redis or PostgreSQL server the test suite needs is not reachable."""

import os
import sys

import psycopg
import redis

redis_url = os.environ["RNNLAB_TEST_REDIS_URL"]
pg_url = os.environ["RNNLAB_TEST_POSTGRES_URL"].replace("postgresql+psycopg://", "postgresql://")
problems = []
try:
    redis.Redis.from_url(redis_url, socket_timeout=3).ping()
except Exception as e:  # noqa: BLE001 - report any failure to connect
    problems.append(f"Redis at {redis_url}: {e}")
try:
    psycopg.connect(pg_url, connect_timeout=3).close()
except Exception as e:  # noqa: BLE001
    problems.append(f"PostgreSQL at {pg_url}: {e}")
if problems:
    print("The test suite needs these services, and they are not up:", *problems, sep="\n  ", file=sys.stderr)
    print("Start them (see README, 'Running the tests') or point RNNLAB_TEST_REDIS_URL / "
          "RNNLAB_TEST_POSTGRES_URL at running ones.", file=sys.stderr)
    sys.exit(1)
print(f"services up: Redis {redis_url}, PostgreSQL {pg_url}")
