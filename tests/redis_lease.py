"""A Redis database of the test process's own: leased by a key with an expiry in database 0,
so that two runs, or two workers of one run, never use (or flush) the same database."""
from __future__ import annotations

import secrets

SERVER = "redis://127.0.0.1:6379"
#: Databases 1-15; database 0 keeps only the leases (and a developer's `make run`, if any).
CANDIDATES = range(1, 16)
LEASE_SECONDS = 3 * 3600


def _lease_key(number: int) -> str:
    return f"lk-test:lease:{number}"


class Lease:
    def __init__(self, leases, client, number: int, token: str):
        self.leases, self.client, self.number, self.token = leases, client, number, token

    @property
    def url(self) -> str:
        return f"{SERVER}/{self.number}"

    def empty(self) -> None:
        self.client.flushdb()

    def release(self) -> None:
        if self.leases.get(_lease_key(self.number)) == self.token.encode():
            self.client.flushdb()
            self.leases.delete(_lease_key(self.number))
        self.client.close()
        self.leases.close()


def lease() -> Lease | None:
    """A free database: nobody's lease on it and no keys in it (None when Redis does not
    answer or no database is free)."""
    import redis

    token = secrets.token_hex(8)
    leases = redis.Redis.from_url(f"{SERVER}/0", socket_connect_timeout=2)
    try:
        leases.ping()
    except redis.ConnectionError:
        leases.close()
        return None
    for number in CANDIDATES:
        if not leases.set(_lease_key(number), token, nx=True, ex=LEASE_SECONDS):
            continue
        client = redis.Redis.from_url(f"{SERVER}/{number}", socket_connect_timeout=2)
        if client.dbsize() == 0:
            return Lease(leases, client, number, token)
        client.close()  # somebody's keys without a lease: not ours to flush
        leases.delete(_lease_key(number))
    leases.close()
    return None
