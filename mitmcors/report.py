"""The ``cors_report`` file: opened only where it can lose nothing but an older report,
written a whole line at a time, and given up with one line when the disk fails.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
from collections.abc import Iterator
from typing import Any, BinaryIO

from mitmproxy import ctx

logger = logging.getLogger(__name__)

FIRST_LINE_LIMIT = 1 << 20  # bytes read to recognise an older report by its first line

# Files other options name, which a report must never overwrite: (option, what it is).
OTHER_FILES = (
    ("cors_rules", "a rule file (cors_rules)"),
    ("rfile", "the capture mitmproxy reads (rfile)"),
    ("save_stream_file", "the capture mitmproxy writes (save_stream_file)"),
)

NOT_FILES = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFBLK: "a block device"}


class ReportFile:
    """The JSON Lines report. A record is one write of its whole line, so a disk that
    fills up can cut only the last line; after a failure nothing more is written."""

    def __init__(self, path: str, file: BinaryIO) -> None:
        self.path = path
        self._file: BinaryIO | None = file

    @classmethod
    def open(cls, path: str) -> ReportFile:
        """Open ``path`` for a new report, truncating an older one.

        Raises ValueError naming why a path is refused, OSError when it cannot be opened.
        """
        refusal = _refusal(path)
        if refusal:
            raise ValueError(f"cors_report: {path} is {refusal}; choose another path")
        return cls(path, open(path, "wb", buffering=0))  # unbuffered: each write is one system call

    def write(self, entry: dict[str, Any]) -> bool:
        """Write one record; False (after logging why, once) when the report has failed."""
        if self._file is None:
            return False
        try:
            _write_whole(self._file, (json.dumps(entry) + "\n").encode())
        except OSError as e:
            logger.error("cors: cannot write the report %s: %s; no more report lines are written, the proxy goes on", self.path, e.strerror)
            self.close()
            return False
        return True

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError as e:  # nothing is buffered, so nothing is lost; say it all the same
                logger.error("cors: cannot close the report %s: %s", self.path, e.strerror)


def _write_whole(file: BinaryIO, line: bytes) -> None:
    """Write the line in one call; only when the system takes part of it, the rest again."""
    view = memoryview(line)
    while view:
        written = file.write(view)
        if not written:
            raise OSError(errno.EIO, "the report took no bytes")
        view = view[written:]


def _refusal(path: str) -> str | None:
    """What ``path`` is when a report must not go there, or None."""
    for option, what in OTHER_FILES:
        if any(_same_file(path, other) for other in _option_paths(option)):
            return what
    try:
        status = os.stat(path)
    except OSError:
        return None  # a new file, or one open() will refuse with its own reason
    if stat.S_ISREG(status.st_mode):
        return None if status.st_size == 0 or _is_report(path) else "a file that is not a cors report (its first line is not a JSON object)"
    return NOT_FILES.get(stat.S_IFMT(status.st_mode))  # character devices (/dev/null, a terminal) are fine


def _option_paths(option: str) -> Iterator[str]:
    """The paths another option names; mitmproxy expands ``~`` and reads ``+`` as append."""
    if option not in ctx.options:
        return
    value = getattr(ctx.options, option)
    for path in [value] if isinstance(value, str) else value or ():
        yield os.path.expanduser(path.removeprefix("+") if option == "save_stream_file" else path)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist yet
        return os.path.realpath(a) == os.path.realpath(b)


def _is_report(path: str) -> bool:
    """An older report begins with a JSON object on its own line."""
    try:
        with open(path, "rb") as file:
            return isinstance(json.loads(file.readline(FIRST_LINE_LIMIT)), dict)
    except (OSError, ValueError):
        return False
