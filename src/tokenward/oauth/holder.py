"""Who holds a refresh lease, and whether that holder is gone.

A lease on an account row (see :mod:`tokenward.oauth.refresh`) names its holder::

    tw1|<host>|<boot id>|<pid namespace>|<pid>|<process start>|<nonce>

so that a process can tell, on the same host, that the holder has died and take the lease over at
once instead of waiting for it to expire (a ``kill -9`` used to stall every call on the accounts
whose lease the dead process held, for most of the lease's lifetime).

A holder is **gone** when, seen from this process:

- it ran on this host (same host name) before the last reboot (another boot id); or
- it ran on this host, in this PID namespace, and no process with its pid is alive, or the
  process now holding that pid started at another time (the pid was reused: a newer incarnation,
  such as a restarted container whose server is pid 1 again).

Anything else (another host, another PID namespace, an unreadable holder string) is *not* known to
be gone: the lease's expiry decides. The check reads ``/proc`` on Linux; elsewhere it falls back to
``os.kill(pid, 0)`` and the start time is not compared.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

_PREFIX = "tw1"
_PROC = Path("/proc")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def _host_name() -> str:
    name = socket.gethostname() or "localhost"
    # Keep the holder under the column's 255 characters; '|' separates fields.
    name = name.replace("|", "_")
    if len(name) > 64:
        name = "h" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]
    return name


def _pid_namespace() -> str:
    try:
        link = os.readlink(_PROC / "self" / "ns" / "pid")  # "pid:[4026531836]"
    except OSError:
        return ""
    return link.removeprefix("pid:[").removesuffix("]")


def process_start(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ("" when unknown)."""
    stat = _read(_PROC / str(pid) / "stat")
    if not stat:
        return ""
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    _head, _sep, rest = stat.rpartition(")")
    fields = rest.split()
    # rest starts at field 3 (state); field 22 (starttime) is rest[19].
    return fields[19] if len(fields) > 19 else ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except OSError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    host: str
    boot_id: str
    pid_namespace: str
    pid: int
    started: str

    @classmethod
    def current(cls) -> ProcessIdentity:
        pid = os.getpid()
        return cls(
            host=_host_name(),
            boot_id=_read(_PROC / "sys" / "kernel" / "random" / "boot_id"),
            pid_namespace=_pid_namespace(),
            pid=pid,
            started=process_start(pid),
        )

    def holder(self, nonce: str | None = None) -> str:
        """A lease owner string naming this process (and ``nonce``, one refresh of it)."""
        return "|".join(
            (
                _PREFIX,
                self.host,
                self.boot_id,
                self.pid_namespace,
                str(self.pid),
                self.started,
                nonce or secrets.token_hex(8),
            )
        )

    def owns(self, holder: str | None) -> bool:
        """True when ``holder`` names this very process (any nonce)."""
        parsed = parse_holder(holder)
        return parsed is not None and parsed == self

    def holder_is_gone(self, holder: str | None) -> bool:
        """True when ``holder`` certainly names a process that no longer runs (module doc)."""
        other = parse_holder(holder)
        if other is None or other.host != self.host:
            return False
        if other.boot_id and self.boot_id and other.boot_id != self.boot_id:
            return True
        if other.pid_namespace != self.pid_namespace:
            return False
        if other == self:
            return False
        if not _pid_alive(other.pid):
            return True
        if other.started and other.pid == self.pid:
            return other.started != self.started
        if other.started:
            now = process_start(other.pid)
            return bool(now) and now != other.started
        return False


def parse_holder(holder: str | None) -> ProcessIdentity | None:
    """The process a holder string names, or ``None`` for any other string."""
    if not holder:
        return None
    parts = holder.split("|")
    if len(parts) != 7 or parts[0] != _PREFIX:
        return None
    _prefix, host, boot_id, pid_namespace, pid, started, _nonce = parts
    if not pid.isdigit():
        return None
    return ProcessIdentity(host, boot_id, pid_namespace, int(pid), started)
