"""Lease holders: a holder names its process, and a dead one on this host is recognised at once."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

from tokenward.oauth.holder import ProcessIdentity, parse_holder, process_start


def _dead_process() -> tuple[int, str]:
    """The pid and start time of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started = process_start(proc.pid)
    proc.kill()
    proc.wait()
    return proc.pid, started


def test_a_holder_names_this_process_and_parses_back() -> None:
    me = ProcessIdentity.current()
    holder = me.holder()
    assert len(holder) <= 255
    assert parse_holder(holder) == me
    assert me.owns(holder)
    assert me.holder() != holder  # each refresh gets its own nonce
    assert me.pid == os.getpid()
    assert me.started == process_start(os.getpid())
    assert me.started, "Linux exposes the process start time in /proc"


def test_this_process_and_its_live_neighbours_are_not_gone() -> None:
    me = ProcessIdentity.current()
    assert not me.holder_is_gone(me.holder())
    parent = dataclasses.replace(me, pid=os.getppid(), started=process_start(os.getppid()))
    assert not me.holder_is_gone(parent.holder())


def test_a_dead_process_on_this_host_is_gone() -> None:
    me = ProcessIdentity.current()
    pid, started = _dead_process()
    dead = dataclasses.replace(me, pid=pid, started=started)
    assert me.holder_is_gone(dead.holder())


def test_a_reused_pid_is_a_newer_incarnation_so_the_old_holder_is_gone() -> None:
    me = ProcessIdentity.current()
    # Same pid as a live process (this one), another start time: that process is gone.
    earlier = dataclasses.replace(me, started=str(int(me.started) - 1))
    assert me.holder_is_gone(earlier.holder())
    parent = dataclasses.replace(me, pid=os.getppid(), started="1")
    assert me.holder_is_gone(parent.holder())


def test_a_previous_boot_of_this_host_is_gone() -> None:
    me = ProcessIdentity.current()
    before_reboot = dataclasses.replace(me, boot_id="00000000-0000-0000-0000-000000000000")
    assert me.holder_is_gone(before_reboot.holder())


def test_what_cannot_be_checked_from_here_is_not_called_gone() -> None:
    me = ProcessIdentity.current()
    pid, started = _dead_process()
    other_host = dataclasses.replace(me, host="replica-2", pid=pid, started=started)
    other_namespace = dataclasses.replace(me, pid_namespace="1", pid=pid, started=started)
    assert not me.holder_is_gone(other_host.holder())
    assert not me.holder_is_gone(other_namespace.holder())
    for unreadable in (None, "", "3f2a9c", "tw1|a|b", "tw1|h|b|n|notapid|1|x"):
        assert parse_holder(unreadable) is None
        assert not me.holder_is_gone(unreadable)
