"""The processes and databases `bench/pipeline.py` runs: Redis, the SMTP sink (instant, or a relay
answering after a delay), the SendGrid-shaped ESP, Celery workers, PostgreSQL.

Every process is started in a session of its own (so a Ctrl-C reaches the benchmark only,
which then stops them in order) and registered with a `Processes` stack that stops them
all on the way out, whatever happened.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import psycopg

BENCH = Path(__file__).resolve().parent
# The project whose code is measured: this checkout, or another one's (`pipeline.py --before <ref>`
# runs this bench against a worktree of that ref through BENCH_CODE_ROOT). The bench's own
# modules (the sink, the probe, its settings) and the virtualenv stay this checkout's.
ROOT = Path(os.environ.get("BENCH_CODE_ROOT") or BENCH.parent).resolve()
PYTHON = BENCH.parent / ".venv" / "bin" / "python"
CELERY = BENCH.parent / ".venv" / "bin" / "celery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with status {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s") from None
            time.sleep(0.05)


class Processes:
    """The processes started here, stopped in reverse order by `stop_all()` (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], *, log: Path, env: dict | None = None) -> subprocess.Popen:
        with open(log, "ab") as out:
            process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        self.running.append((name, process))
        return process

    def stop(self, process: subprocess.Popen, timeout: float = 30.0) -> None:
        """SIGTERM (a Celery worker finishes its task and says QUIT), then SIGKILL its whole session."""
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
                process.wait()
        else:  # a prefork worker that died may leave its pool children behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        self.running = [(n, p) for n, p in self.running if p is not process]

    def stop_all(self) -> None:
        for _name, process in reversed(list(self.running)):
            self.stop(process)


class Redis:
    def __init__(self, processes: Processes, workdir: Path) -> None:
        self.port = free_port()
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not installed")
        self.process = processes.start(
            "redis", [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                      "--daemonize", "no", "--dir", str(workdir)], log=workdir / "redis.log")
        wait_for_port(self.port, self.process, "redis-server")
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        """Drop every queued task: each phase starts from an empty broker."""
        import redis

        client = redis.Redis(port=self.port)
        client.flushall()
        client.close()


class Sink:
    """`bench/_sink.py` in a process of its own, and the arrivals it logged (`id -> [times]`).

    `delay`: it answers DATA that long after each message arrived (a relay's pace);
    `max_connections`: a connection beyond so many is refused with 421. `esp=True`: the
    SendGrid-shaped HTTP API (`bench/_esp.py`) instead, answering each call after `delay`.
    """

    def __init__(self, processes: Processes, workdir: Path, *, name: str = "sink", delay: float = 0.0,
                 max_connections: int | None = None, esp: bool = False) -> None:
        self.port = free_port()
        self.name, self.delay = name, delay
        self.path = workdir / ("arrivals.log" if name == "sink" else f"{name}-arrivals.log")
        self.path.write_text("")  # a kept directory may hold an earlier run's
        script = BENCH / ("_esp.py" if esp else "_sink.py")
        command = [str(PYTHON), str(script), str(self.port), str(self.path), "--delay", str(delay)]
        if max_connections is not None:
            command += ["--max-connections", str(max_connections)]
        self.process = processes.start(name, command, log=workdir / f"{name}.out")
        wait_for_port(self.port, self.process, f"the {'ESP' if esp else 'SMTP'} sink {name}")
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self._source = open(self.path, encoding="ascii")  # noqa: SIM115  (read as the sink writes, until exit)
        self._partial = ""

    def poll(self) -> dict[str, list[float]]:
        """Read the lines logged since the last call; returns every arrival so far."""
        text = self._partial + self._source.read()
        lines = text.split("\n")
        self._partial = lines.pop()
        for line in lines:
            notification_id, _, stamp = line.partition(" ")
            self.arrivals[notification_id].append(float(stamp))
        return self.arrivals

    def wait_for(self, ids: list[str], *, stall: float = 60.0) -> dict[str, list[float]]:
        """Wait until each id arrived; give up after `stall` seconds without a new one of them.

        Returns `{id: [arrival times]}` for the ids (an empty list: never arrived).
        """
        missing, last_progress = set(ids), time.monotonic()
        while missing:
            arrivals = self.poll()
            arrived = {i for i in missing if i in arrivals}
            if arrived:
                missing -= arrived
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > stall:
                break
            else:
                time.sleep(0.01)
        return {i: list(self.arrivals.get(i, [])) for i in ids}


class Worker:
    """`celery -A config worker -P prefork -c <concurrency> -Q <lanes> -l WARNING`, with the bench probe."""

    def __init__(self, processes: Processes, workdir: Path, *, name: str, lanes: str, env: dict,
                 loglevel: str = "WARNING", concurrency: int = 1) -> None:
        self.processes, self.name = processes, name
        self.probe_dir = workdir / f"probe-{name}"
        self.probe_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.probe_dir.iterdir():  # a kept directory may hold an earlier run's
            stale.unlink()
        self.log = workdir / f"worker-{name}.log"
        self.spawned = time.time()
        self.process = processes.start(
            f"worker {name}",
            [str(CELERY), "-A", "config", "worker", "-P", "prefork", "-c", str(concurrency), "-Q", lanes, "-l", loglevel,
             "-n", f"{name}@%h"],
            log=self.log, env={**env, "BENCH_PROBE_DIR": str(self.probe_dir), "BENCH_WORKER_NAME": name})

    def wait_ready(self, timeout: float = 120.0) -> float:
        """The moment (time.time()) the worker said it was ready to consume."""
        ready = self.probe_dir / f"ready-{self.name}"
        deadline = time.monotonic() + timeout
        while not ready.exists() or not ready.read_text():
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} was not ready within {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.02)
        return float(ready.read_text())

    def stop(self) -> None:
        """Stop it (a warm shutdown: the running task ends first) and show any error it logged."""
        self.processes.stop(self.process, timeout=60)
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        if "Traceback" in log or "ERROR" in log:
            print(f"worker {self.name} logged errors ({self.log}):\n{self.tail()}", flush=True)

    def probe(self) -> dict:
        import _probe

        return dict(_probe.read(str(self.probe_dir)))

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


class Postgres:
    """The bench's databases on the project's PostgreSQL server, administered from the `postgres` database."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")  # postgres://user@host:port
        self.admin_dsn = f"{self.url}/postgres"

    def database_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def _execute(self, sql: str, params=()) -> list[tuple]:
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            cursor = admin.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create(self, name: str, *, template: str | None = None) -> None:
        """A new, empty database, or a copy of `template` (which must have no connection)."""
        self.drop(name)
        if template:
            self.wait_idle(template)
        self._execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))

    def wait_idle(self, name: str, timeout: float = 30.0) -> None:
        """Until no backend is connected to `name`: a backend flushes its statistics as it exits."""
        deadline = time.monotonic() + timeout
        while self._execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name])[0][0]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"connections to {name} stay open")
            time.sleep(0.05)

    def counters(self, name: str) -> dict[str, int]:
        """The database's commit and row counters, once nothing is connected to it."""
        self.wait_idle(name)
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_stat_clear_snapshot()")
            row = admin.execute("SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted "
                                "FROM pg_stat_database WHERE datname = %s", [name]).fetchone()
        return dict(zip(("commits", "rollbacks", "inserted", "updated", "deleted"), row, strict=True))


def manage(*args: str, env: dict) -> None:
    """`manage.py <args>` in a process of its own (migrate, load_default_templates)."""
    done = subprocess.run([str(PYTHON), "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          start_new_session=True, check=False)
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt, so the `finally` blocks stop what was started.

    SIGINT is set explicitly: a process started in the background by a shell inherits it ignored.
    """
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def ignore_signals() -> None:
    """While cleaning up: a second Ctrl-C must not leave processes or databases behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
