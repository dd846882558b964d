"""A dream pauses the cyclic garbage collector, and always leaves it as it found it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest
from conftest import chat
from reverie import collector
from reverie.engines import heuristic

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def running_collector() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


def test_the_collector_resumes_only_when_the_last_of_nested_pauses_ends():
    with collector.paused():
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_switched_off_before_a_pause_stays_off_after_it():
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()


def test_a_pause_ends_when_its_body_fails():
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("the engine failed")
    assert gc.isenabled()


def test_pauses_from_two_threads_overlap_without_resuming_the_collector_early():
    entered, leave = threading.Event(), threading.Event()

    def worker():
        with collector.paused():
            entered.set()
            leave.wait(5)

    thread = threading.Thread(target=worker)
    thread.start()
    assert entered.wait(5)
    with collector.paused():
        pass  # this one ends first: the worker's pause still holds
    assert not gc.isenabled()
    leave.set()
    thread.join(5)
    assert gc.isenabled()


async def test_a_heuristic_dream_runs_with_the_collector_paused_and_leaves_it_running(reverie, monkeypatch):
    seen = []
    proposed = heuristic._proposed

    def watched(dream):
        seen.append(gc.isenabled())
        return proposed(dream)

    monkeypatch.setattr(heuristic, "_proposed", watched)
    await reverie.log_session(chat("We moved the API to port 9090."))
    await reverie.propose_dream("heuristic")
    assert seen == [False]
    assert gc.isenabled()
