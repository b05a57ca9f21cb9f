"""Background jobs and shared counters: Celery in-process by default and with a real worker on
Redis; the sign-in rate limit in memory by default and in Redis when configured."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from celery import Celery
from celery.result import EagerResult
from sqlalchemy.engine import make_url

from app.jobs import celery_app
from app.tasks import ping_database

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def redis_store(redis_url):
    """A client on this worker's own Redis database (``redis_url``: empty before and after)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    yield client
    client.close()


# In-process (eager) jobs


def test_without_a_broker_tasks_run_in_process(app, two_branches):
    assert app.config["CELERY_BROKER_URL"] is None
    assert celery_app.conf.task_always_eager
    result = ping_database.delay()
    assert isinstance(result, EagerResult)
    assert result.get(timeout=1) == 2


def test_a_task_outside_any_app_context_uses_the_app(app, two_branches):
    got = []
    thread = threading.Thread(target=lambda: got.append(ping_database.delay().get(timeout=5)))
    thread.start()
    thread.join(10)
    assert got == [2]


# A real worker


def _start_worker(broker: str, database_url: str, queue: str, tmp_path: Path, log: Path,
                  **extra_env: str):
    env = {
        **os.environ,
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "worker-instance"),
        "SECRET_KEY": secrets.token_hex(16),
        "OTP_HASH_KEY": secrets.token_hex(16),
        "DEV_OUTBOX_DIR": str(tmp_path / "outbox"),
        **extra_env,
    }
    cmd = [str(Path(sys.executable).parent / "celery"), "-A", "app.worker", "worker",
           "--pool=solo", "-c", "1", "-Q", queue, "-n", f"{queue}@%h", "--loglevel=INFO",
           "--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen, timeout: float = 20) -> int:
    """Warm shutdown (SIGTERM), then kill if the worker does not stop in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


@pytest.mark.redis
@pytest.mark.committed  # a worker process reads the data
def test_a_real_worker_runs_the_task_on_the_same_database(
        app, two_branches, database_url, redis_url, redis_store, tmp_path):
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        pytest.skip("a worker process cannot share an in-memory SQLite database")
    store, broker = redis_store, redis_url
    queue = f"lk-test-{secrets.token_hex(4)}"
    log = tmp_path / "worker.log"
    worker = _start_worker(broker, database_url, queue, tmp_path, log)
    client = Celery("lk-test-client", broker=broker, backend=broker)
    try:
        result = client.send_task("lk_portal.ping_database", queue=queue)
        deadline = time.monotonic() + 90
        while not result.ready():
            assert worker.poll() is None, f"the worker died:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no result in 90 s:\n{log.read_text()}"
            time.sleep(0.2)
        assert result.get(timeout=5) == 2
        assert store.keys(f"celery-task-meta-{result.id}"), "the result is not kept in Redis"
    finally:
        client.close()
        code = _stop(worker)
    output = log.read_text()
    assert code == 0, output
    assert "lk_portal.ping_database" in output and "succeeded" in output
    assert "Warm shutdown" in output


# Rate limits


def _login_app(make_app, storage: str):
    return make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=storage,
                    AUTH_RATE_LIMIT="3 per 1 minute")


def _failed_logins(flask_app, times: int) -> list[int]:
    client = flask_app.test_client()
    return [client.post("/login/", data={"username": "nobody", "password": "wrong"}).status_code
            for _ in range(times)]


def test_rate_limit_in_memory_is_per_process(make_app):
    first = _login_app(make_app, "memory://")
    assert type(first.appbuilder.sm.limiter.storage).__name__ == "MemoryStorage"
    assert _failed_logins(first, 5) == [302, 302, 302, 429, 429]
    second = _login_app(make_app, "memory://")
    assert _failed_logins(second, 1) == [302], "a second process has its own memory"


@pytest.mark.redis
def test_rate_limit_counts_in_redis_across_processes(make_app, redis_url, redis_store):
    store, storage = redis_store, redis_url
    first = _login_app(make_app, storage)
    assert type(first.appbuilder.sm.limiter.storage).__name__ == "RedisStorage"
    assert store.keys("*") == []
    assert _failed_logins(first, 5) == [302, 302, 302, 429, 429]
    keys = [k.decode() for k in store.keys("*")]
    assert keys and all(k.startswith("LIMITS") for k in keys), keys
    assert any("login" in k.lower() or "authdbview" in k.lower() for k in keys), keys
    second = _login_app(make_app, storage)
    assert _failed_logins(second, 1) == [429], "the counter is shared through Redis"
