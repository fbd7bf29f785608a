"""Test fakes shared by several test modules (import as ``from fakes import ...``, like ``reference``)."""

from __future__ import annotations

import threading
from datetime import datetime

from sessiondata import Bar


class HungRepository:
    """A repository whose range reads hang until the test releases them (a dead network share, a pass
    stuck in a fetch): ``called`` is set by the first read, which waits for ``release`` (at most ``deadline``
    seconds, so a failing test cannot hang the run) and then answers nothing."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.called = threading.Event()
        self.release = threading.Event()

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        self.called.set()
        self.release.wait(self.deadline)
        return []
