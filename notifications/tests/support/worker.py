"""A real Celery worker process against its own redis-server on a free port.

Each test gets its own broker, so it may stop it or flood it without touching anything
else on the machine; the worker reaches the test database through DATABASE_URL.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from notifications.tests.support.services import database_url, free_port, require

ROOT = Path(settings.BASE_DIR)


def wait_until(predicate, timeout: float = 60.0) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; returns its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@contextmanager
def celery_broker(url: str, monkeypatch):
    """Point this process's Celery app at the broker `url`, with eager mode off.

    Celery reads `CELERY_BROKER_URL` from the environment before its config (CI sets
    it), so both are changed.
    """
    from config.celery import app

    def reset_connections() -> None:
        # Producers are pooled on first use; drop them so the next publish connects to
        # the broker configured now.
        app._pool = None
        app.amqp._producer_pool = None

    monkeypatch.setenv("CELERY_BROKER_URL", url)
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=url, task_always_eager=False)
    reset_connections()
    try:
        yield
    finally:
        reset_connections()
        app.conf.update(saved)


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        require(binary is not None, "redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


ALL_LANES = "urgent,default,bulk"


class WorkerProcess:
    """`celery -A config worker` in a subprocess, with its log kept for assertions.

    `queues` are the lanes it consumes (all by default; one for a pool per lane). `pool` and
    `concurrency` are Celery's `--pool` and `-c` (the solo pool by default; `prefork` with
    `-c 2` is what the README's recipe runs); `argv`: the arguments after `celery`, as written
    (the README's own lines), instead. `beat`
    runs Celery beat inside it (`-B`), so the sweep runs every `OUTBOX_SWEEP_SECONDS` as in
    production; the sweep task is routed to the `default` queue, so such a worker must
    consume it.
    """

    def __init__(
        self, *, broker_url: str, env: dict[str, str], logfile: Path, name: str = "w1", queues: str = ALL_LANES,
        beat: bool = False, pool: str = "solo", concurrency: int = 1, argv: list[str] | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.env = env
        self.logfile = logfile
        self.name = name
        self.queues = queues
        self.beat = beat
        self.pool = pool
        self.concurrency = concurrency
        self.argv = argv
        self.process: subprocess.Popen | None = None

    def start(self, *, wait: bool = True) -> WorkerProcess:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "ENVIRONMENT": "development",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            "PYTHONPATH": str(ROOT),
            **self.env,
        }
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.queues,
                   f"--pool={self.pool}", "-c", str(self.concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
                   "-n", f"{self.name}@%h", "-l", "INFO"]
        if self.argv is not None:  # a command as written elsewhere (the README's), after `celery`
            command = [sys.executable, "-m", "celery", *self.argv]
        if self.beat:
            if "default" not in self.queues.split(","):
                raise ValueError("beat publishes the sweep to the default queue: a beat worker must consume it")
            command += ["-B", "--schedule", str(self.logfile.with_name(f"{self.name}-beat-schedule"))]
        self._log = open(self.logfile, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_ready()
        return self

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while "ready." not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(f"The worker exited:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"The worker did not become ready:\n{self.log()}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.process.pid

    def children(self) -> list[int]:
        """The processes this worker forked (Linux's /proc), e.g. beat's."""
        found: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            try:
                found += [int(pid) for pid in task.read_text().split()]
            except (OSError, ValueError):
                continue
        return found

    def sweeps(self) -> int:
        """How many sweeps beat has run in this worker so far."""
        return len(re.findall(r"Task notifications\.sweep_stranded_messages\[[^\]]+\] succeeded", self.log()))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                for child in self.children():  # the beat process it forked would outlive it
                    os.kill(child, signal.SIGKILL)
                self.process.kill()
                self.process.wait(10)
        if getattr(self, "_log", None):
            self._log.close()
