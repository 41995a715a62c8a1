"""Shared fixtures: real SMTP servers, SMTP-backed settings, default templates, workers."""
from __future__ import annotations

import pytest
from django.core.management import call_command

from notifications.tests.support.smtp import SMTPServer
from notifications.tests.support.worker import ALL_LANES, RedisServer, WorkerProcess, celery_broker


@pytest.fixture(autouse=True)
def _english():
    """Code called outside a request (services, models, commands) speaks English in tests, as
    requests made with `ApiClient` do; French, the default, is tested explicitly (test_languages)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def client():
    """pytest-django's test client, asking for English pages (`Accept-Language: en`)."""
    from django.test import Client

    return Client(headers={"Accept-Language": "en"})


@pytest.fixture
def admin_client(db, admin_user, client):
    """pytest-django's, logged in as a superuser, in English like `client`."""
    client.force_login(admin_user)
    return client


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache: no test inherits another's."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


#: The hostile input corpus: every 4xx answer their requests get is also read for a Python
#: exception's own text (issue 16; `support/leaks.py`).
HOSTILE_CORPUS = {
    "test_api_input", "test_input_limits", "test_header_corpus", "test_api_schemathesis", "test_api_consistency",
    "test_recipient_caps", "test_api_batch", "test_exception_text",
}


@pytest.fixture(autouse=True)
def _no_exception_text_in_4xx_answers(request):
    """In the hostile corpus, no 4xx body repeats a Python exception's text (checked after each test)."""
    if request.module.__name__.rsplit(".", 1)[-1] not in HOSTILE_CORPUS:
        yield
        return
    from notifications.tests.support.leaks import leaking_answers, watch_answers

    with watch_answers() as answers:
        yield
    leaking = leaking_answers(answers)
    assert not leaking, f"4xx bodies with a Python exception's text: {leaking}"


@pytest.fixture(autouse=True)
def _fresh_kept_connections():
    """Each test starts without the connections a previous one kept open in this process."""
    from notifications.channels.email.backends import connections

    connections.close_all()
    yield
    connections.close_all()


@pytest.fixture(autouse=True)
def _fresh_lane_state():
    """No test inherits what an earlier drain in this process learnt of its lanes (rests, drains)."""
    from notifications.core.outbox import leases
    from notifications.core.outbox import drain
    from notifications.core.outbox import wakeups

    drain.forget_process_state()
    wakeups.forget_broker_state()
    yield
    drain.forget_process_state()
    drain.close_recorder()  # a worker-like drain's thread holds a connection to the test database
    leases.stop_keeper()
    wakeups.forget_broker_state()


@pytest.fixture
def smtp_server(request):
    """A real SMTP server; `@pytest.mark.smtp_delay(seconds)` makes it answer DATA slowly."""
    marker = request.node.get_closest_marker("smtp_delay")
    server = SMTPServer(delay=marker.args[0] if marker else 0.0).start()
    yield server
    server.stop()


@pytest.fixture
def start_smtp_server():
    """Start more real SMTP servers, with any `SMTPServer` options; all stopped afterwards."""
    servers: list[SMTPServer] = []

    def start(**options) -> SMTPServer:
        server = SMTPServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def database_smtp(settings):
    """Deliver through `DatabaseSMTPBackend` (pytest-django's locmem swapped back out)."""
    settings.EMAIL_BACKEND = "notifications.backends.DatabaseSMTPBackend"
    return settings


@pytest.fixture
def smtp_backend(settings, smtp_server):
    """Deliver through Django's SMTP backend to the test's aiosmtpd server.

    pytest-django swaps the backend for locmem; SMTP tests set it back explicitly.
    """
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    return smtp_server


@pytest.fixture
def default_templates(db):
    call_command("load_default_templates", verbosity=0)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def broker(redis_server, monkeypatch):
    """Point this process's Celery app at the test's own Redis, with eager mode off."""
    with celery_broker(redis_server.url, monkeypatch):
        yield redis_server


@pytest.fixture
def start_worker(broker, smtp_server, tmp_path):
    """Start real worker processes delivering to the test's SMTP server; stopped afterwards."""
    workers: list[WorkerProcess] = []

    def start(
        *, name: str = "w1", wait: bool = True, env: dict[str, str] | None = None, queues: str = ALL_LANES,
        beat: bool = False, smtp: SMTPServer | None = None, pool: str = "solo", concurrency: int = 1,
        argv: list[str] | None = None,
    ) -> WorkerProcess:
        """`queues`: the lanes it consumes; `pool`, `concurrency`: Celery's. `beat`: run the sweep in it, every 0.2 s unless
        `env` sets OUTBOX_SWEEP_SECONDS. `smtp`: deliver there instead of to `smtp_server`."""
        server = smtp or smtp_server
        worker = WorkerProcess(
            broker_url=broker.url,
            logfile=tmp_path / f"{name}.log",
            name=name,
            queues=queues,
            beat=beat,
            pool=pool,
            concurrency=concurrency,
            argv=argv,
            env={
                **({"OUTBOX_SWEEP_SECONDS": "0.2"} if beat else {}),
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "SMTP_HOST": server.host,
                "SMTP_PORT": str(server.port),
                "SMTP_USE_TLS": "false",
                "SMTP_USER": "",
                "SMTP_PASSWORD": "",
                **(env or {}),
            },
        )
        workers.append(worker)
        return worker.start(wait=wait)

    yield start
    for worker in workers:
        worker.stop()
