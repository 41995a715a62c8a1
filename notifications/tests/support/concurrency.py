"""Calls released at the same moment from several threads, each on its own database connection."""
from __future__ import annotations

import threading

from django.db import connection


def concurrently(count: int, call) -> list:
    """Run `call()` in `count` threads released together; each thread has its own connection."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertions below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results
