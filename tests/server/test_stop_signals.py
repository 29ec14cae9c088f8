"""The stop-signal scope of `serve`: a SIGTERM anywhere ends the session, exactly once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from compiler.server.serve import StopSignal, stop_signals


def _sigterm_self_and_wait() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler runs (and raises) during this sleep


def test_a_stop_is_not_swallowed_by_except_exception() -> None:
    """torch's import inside `except Exception` once ate the stop, and serve then ignored every later SIGTERM."""
    swallowed = False
    with stop_signals() as stopped:
        with pytest.raises(StopSignal):
            try:
                _sigterm_self_and_wait()
            except Exception:
                swallowed = True
        assert not swallowed and stopped()


def test_later_signals_do_not_interrupt_the_clean_up_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with stop_signals() as stopped:
        assert not stopped()
        with pytest.raises(StopSignal):
            _sigterm_self_and_wait()
        try:  # the clean-up: a second or third signal is delivered during this sleep and must not cut it short
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
        except (StopSignal, KeyboardInterrupt):
            pytest.fail("a later signal interrupted the clean-up that the first one started")
        assert stopped()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
