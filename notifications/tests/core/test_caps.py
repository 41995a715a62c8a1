"""Caps per provider (`core.caps`) held across real processes on a real Redis, and within one process."""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import pytest

from notifications.core import caps
from notifications.tests.support.relays import most_in_any_window
from notifications.tests.support.services import free_port

FORK = multiprocessing.get_context("fork")


@pytest.fixture
def shared_redis(redis_server, settings):
    """A redis-server of this test's own, named as the deployment's shared store."""
    settings.OUTBOX_SHARED_STATE_URL = redis_server.url
    return redis_server


@pytest.fixture
def local_caps(settings):
    settings.OUTBOX_SHARED_STATE_URL = ""
    caps.forget_local_state()
    yield
    caps.forget_local_state()


def _hold_slots_in_turn(provider: str, turns: int, inside, peak, lock, taken_counts, index: int) -> None:
    """A process that takes a slot `turns` times, holds it a while, and writes down how many
    processes were inside at once (counted outside the caps, in shared memory)."""
    done = 0
    for _ in range(turns):
        slot = caps.acquire_slot(provider, limit=3, lease_seconds=10, timeout=30)
        if slot is None:
            continue
        with slot:
            with lock:
                inside.value += 1
                peak.value = max(peak.value, inside.value)
            time.sleep(0.01)
            with lock:
                inside.value -= 1
        done += 1
    taken_counts[index] = done


def _contend(provider: str, *, processes: int, turns: int) -> tuple[int, list[int]]:
    lock = FORK.Lock()
    inside, peak = FORK.Value("i", 0, lock=False), FORK.Value("i", 0, lock=False)
    taken_counts = FORK.Array("i", processes, lock=False)
    children = [FORK.Process(target=_hold_slots_in_turn, args=(provider, turns, inside, peak, lock, taken_counts, i))
                for i in range(processes)]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
        assert child.exitcode == 0
    return peak.value, list(taken_counts)


def test_eight_processes_contending_for_three_slots_never_hold_more_than_three(shared_redis):
    peak, taken = _contend("smtp:relay.example", processes=8, turns=15)

    assert taken == [15] * 8  # every process got every slot it waited for
    assert peak == 3  # contended: three at once, never a fourth
    assert caps.slot_holders("smtp:relay.example") == 0  # all given back


def _hold_every_slot_then_wait(provider: str, ready) -> None:
    held = [caps.acquire_slot(provider, limit=3, lease_seconds=1.0, timeout=5) for _ in range(3)]
    assert all(held)
    ready.set()
    time.sleep(3600)  # until killed, never releasing


def test_a_killed_holders_slots_free_themselves_once_their_leases_run_out(shared_redis):
    ready = FORK.Event()
    holder = FORK.Process(target=_hold_every_slot_then_wait, args=("esp:sendgrid", ready))
    holder.start()
    assert ready.wait(30)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)

    assert caps.slot_holders("esp:sendgrid") == 3  # the dead holder's leases still count...
    waiting = caps.try_slot("esp:sendgrid", limit=3, lease_seconds=1.0)
    assert isinstance(waiting, float) and 0 < waiting <= 1.0  # ...and we are told to wait at most the lease

    slots = [caps.acquire_slot("esp:sendgrid", limit=3, lease_seconds=5, timeout=10) for _ in range(3)]

    assert all(slots)  # ...until they ran out: then all three are ours
    assert isinstance(caps.try_slot("esp:sendgrid", limit=3, lease_seconds=5), float)  # and held again


def test_a_renewed_slot_outlives_its_first_lease_and_a_lapsed_one_cannot_be_renewed(shared_redis):
    kept = caps.acquire_slot("smtp:a", limit=1, lease_seconds=0.3)
    lapsing = caps.acquire_slot("smtp:b", limit=1, lease_seconds=0.3)
    for _ in range(4):
        time.sleep(0.15)
        assert kept.renew()

    assert caps.acquire_slot("smtp:a", limit=1, lease_seconds=1) is None  # still held after 0.6 s
    assert lapsing.renew() is False  # its lease ran out meanwhile: its holder must let it go
    assert caps.acquire_slot("smtp:b", limit=1, lease_seconds=1) is not None
    kept.release()
    assert caps.acquire_slot("smtp:a", limit=1, lease_seconds=1) is not None


def test_keeping_a_slot_renews_it_only_once_half_its_lease_has_passed(shared_redis):
    slot = caps.acquire_slot("smtp:kept", limit=1, lease_seconds=0.4)
    first = slot.renewed_at
    assert slot.keep() and slot.renewed_at == first  # early: nothing asked of Redis
    for _ in range(4):
        time.sleep(0.15)
        assert slot.keep()
    assert slot.renewed_at > first
    assert caps.acquire_slot("smtp:kept", limit=1, lease_seconds=1) is None  # held 0.6 s on a 0.4 s lease
    slot.release()
    assert slot.keep() is False


def _take_grants(provider: str, count: int, times) -> None:
    for _ in range(count):
        while (wait := caps.take_rate(provider, per_second=20)) > 0:
            time.sleep(wait)
        times.put(time.time())


# The grant's time is written down by the process after Redis granted it: on a loaded machine
# that may come a few milliseconds late, which can only bring two grants' written times closer
# than Redis saw them. Windows are therefore checked 50 ms short of a second.
RATE_TOLERANCE_SECONDS = 0.05


def test_six_processes_never_take_more_than_the_rate_in_any_one_second_window(shared_redis):
    times = FORK.Queue()
    children = [FORK.Process(target=_take_grants, args=("ses:eu-west-1", 12, times)) for _ in range(6)]
    for child in children:
        child.start()
    granted = [times.get(timeout=60) for _ in range(72)]
    for child in children:
        child.join(30)
        assert child.exitcode == 0

    assert len(granted) == 72  # every message got its turn: waited, never refused
    assert most_in_any_window(granted, 1.0 - RATE_TOLERANCE_SECONDS) <= 20
    assert max(granted) - min(granted) >= 3.0 - RATE_TOLERANCE_SECONDS  # 72 at 20/s: at least 3 full windows


def test_a_rate_below_one_a_second_is_one_grant_per_so_many_seconds():
    assert caps.rate_window(0.5) == (1, 2.0)
    assert caps.rate_window(14) == (14, 1.0)
    assert caps.rate_window(2.5) == (2, 0.8)


def test_a_held_back_caller_is_told_how_long_to_wait_and_nothing_is_taken(shared_redis):
    for _ in range(5):
        assert caps.take_rate("esp:x", per_second=5) == 0
    waits = [caps.take_rate("esp:x", per_second=5) for _ in range(3)]

    assert all(0 < wait <= 1.0 for wait in waits)
    time.sleep(max(waits))
    assert caps.take_rate("esp:x", per_second=5) == 0  # the waits took nothing: the window is free again


@pytest.mark.parametrize("store", ["redis", "process"])
def test_a_batch_takes_what_the_window_has_left_and_is_told_when_more_come(store, redis_server, settings):
    settings.OUTBOX_SHARED_STATE_URL = redis_server.url if store == "redis" else ""
    caps.forget_local_state()

    assert caps.take_rates("esp:batch", per_second=10, wanted=4) == (4, 0.0)
    granted, wait = caps.take_rates("esp:batch", per_second=10, wanted=16)
    assert granted == 6 and 0 < wait <= 1.0  # the window's 10, no more
    assert caps.take_rates("esp:batch", per_second=10, wanted=1)[0] == 0
    time.sleep(wait)
    assert caps.take_rates("esp:batch", per_second=10, wanted=16)[0] == 10  # a whole window again


def test_no_cap_takes_nothing_and_holds_nothing(shared_redis):
    assert caps.take_rate("smtp:x", per_second=None) == 0
    with caps.acquire_slot("smtp:x", limit=None, lease_seconds=1) as slot:
        assert slot.renew()
    assert caps.slot_holders("smtp:x") == 0


def test_with_the_shared_store_down_a_caller_waits_and_is_never_let_through(settings):
    settings.OUTBOX_SHARED_STATE_URL = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens

    assert caps.take_rate("smtp:x", per_second=10) == caps.STORE_DOWN_WAIT_SECONDS
    assert caps.try_slot("smtp:x", limit=3, lease_seconds=1) == caps.STORE_DOWN_WAIT_SECONDS
    assert caps.acquire_slot("smtp:x", limit=3, lease_seconds=1, timeout=0) is None


def test_within_one_process_eight_threads_never_hold_more_than_three_slots(local_caps):
    inside, peak, lock = [0], [0], threading.Lock()

    def work() -> None:
        for _ in range(20):
            with caps.acquire_slot("smtp:local", limit=3, lease_seconds=10, timeout=30):
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.005)
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert peak[0] == 3
    assert caps.slot_holders("smtp:local") == 0


def test_within_one_process_a_lapsed_lease_frees_its_slot(local_caps):
    assert caps.acquire_slot("smtp:local", limit=1, lease_seconds=0.2) is not None  # never released
    assert caps.acquire_slot("smtp:local", limit=1, lease_seconds=1, timeout=0) is None
    assert caps.acquire_slot("smtp:local", limit=1, lease_seconds=1, timeout=5) is not None


def test_within_one_process_threads_never_take_more_than_the_rate_in_any_window(local_caps):
    granted: list[float] = []

    def work() -> None:
        for _ in range(10):
            assert caps.wait_for_rate("smtp:local", per_second=15, timeout=30)
            granted.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(granted) == 40
    assert most_in_any_window(granted, 1.0 - RATE_TOLERANCE_SECONDS) <= 15
