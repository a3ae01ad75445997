"""One process owns a state directory: an exclusive `flock` on `<state-dir>/lock`, which names its holder.

Two servers on one SQLite database would each believe its memory is the truth, and the second would
repoint the kubeconfig and `server.json` at itself. The kernel drops the lock when its holder exits,
however it exits (kill -9 included), so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

import orjson

LOCK_FILE = "lock"


class StateDirInUse(Exception):
    """Another process holds the state directory; the message names it."""

    def __init__(self, state_dir: Path, pid: int | None, command: str | None) -> None:
        self.state_dir, self.pid, self.command = state_dir, pid, command
        holder = f"{command or 'another process'} (pid {pid})" if pid else "another process"
        super().__init__(f"{state_dir} is in use by {holder}")


class StateDirLock:
    """Held from `acquire` until `release` (or the process's end)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, state_dir: Path, command: str | None = None) -> StateDirLock:
        """Locks `state_dir` for this process, recording its pid and `command` (default: its command line);
        raises StateDirInUse, naming the holder, when another process has it."""
        fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by children
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StateDirInUse(state_dir, *holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, orjson.dumps({"pid": os.getpid(), "command": command or _command_line()}), 0)
        return cls(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # a reader racing the next holder's write finds no stale pid
        os.close(self._fd)  # closing drops the lock
        self._fd = None


def _holder(fd: int) -> tuple[int | None, str | None]:
    try:
        record = orjson.loads(os.pread(fd, 4096, 0))
        return int(record["pid"]), str(record["command"])
    except (OSError, ValueError, KeyError, TypeError):  # being written, or not ours
        return None, None


def _command_line() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv and sys.argv[0] else "python"
