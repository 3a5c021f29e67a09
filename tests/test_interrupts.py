"""Ctrl-C waits for the write in flight (crmsweep/cleanup/interrupts.py)."""

from __future__ import annotations

import os
import signal

import pytest

from crmsweep.cleanup.interrupts import writes_finish_first


def test_a_first_ctrl_c_waits_for_the_block_then_interrupts() -> None:
    finished: list[str] = []
    with pytest.raises(KeyboardInterrupt), writes_finish_first():
        os.kill(os.getpid(), signal.SIGINT)
        finished.append("the write's result was logged")
    assert finished == ["the write's result was logged"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_interrupts_at_once() -> None:
    reached: list[str] = []
    with pytest.raises(KeyboardInterrupt), writes_finish_first():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        reached.append("never")
    assert reached == []


def test_without_ctrl_c_nothing_is_raised_and_the_handler_is_restored() -> None:
    with writes_finish_first():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_signal_says_the_write_was_cut_off_and_sigterm_is_held_like_ctrl_c() -> None:
    from crmsweep.cleanup.interrupts import InterruptedMidWrite

    with pytest.raises(InterruptedMidWrite), writes_finish_first():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    finished: list[str] = []
    with pytest.raises(KeyboardInterrupt), writes_finish_first():
        os.kill(os.getpid(), signal.SIGTERM)
        finished.append("logged")
    assert finished == ["logged"] and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
