"""A real Celery worker process against its own redis-server on a free port.

Each test gets its own broker, so it may stop it or flood it without touching anything
else on the machine; the worker reaches the test database through DATABASE_URL.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

from .services import database_url, free_port, require

ROOT = Path(settings.BASE_DIR)


def wait_until(predicate, timeout: float = 60.0) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; returns its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


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


class WorkerProcess:
    """`celery -A config worker` in a subprocess, with its log kept for assertions."""

    def __init__(self, *, broker_url: str, env: dict[str, str], logfile: Path, name: str = "w1") -> None:
        self.broker_url = broker_url
        self.env = env
        self.logfile = logfile
        self.name = name
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
        self._log = open(self.logfile, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "urgent,default,bulk",
             "--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"{self.name}@%h", "-l", "INFO"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
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

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if getattr(self, "_log", None):
            self._log.close()
