"""Let decoding, drawing and encoding of the preview run at the same time.

The decoder and the encoder are ffmpeg processes, but a pipe holds only 64 KiB: without help, Python waits for
ffmpeg to hand over each decoded frame and again for it to take each composed one, so the three stages add up.
``Prefetch`` reads decoded frames in a thread, ``Feeder`` writes composed frames in another; both hold at most
``depth`` frames, so memory stays flat. Pipe reads and writes and most OpenCV calls release the GIL.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()
_POLL_S = 0.1


class Prefetch(Generic[T]):
    """Iterate ``source`` in a background thread, ``depth`` items ahead. Use as a context manager: leaving it
    stops the thread (after the item it is reading) before the caller closes ``source``."""

    def __init__(self, source: Iterator[T], depth: int = 3) -> None:
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="preview-decode", daemon=True)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._error = exc
        self._put(_DONE)

    def __enter__(self) -> Prefetch[T]:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                if self._error is not None:
                    raise self._error
                return
            yield item  # type: ignore[misc]


class Feeder(Generic[T]):
    """Hand items to ``consume`` in a background thread, at most ``depth`` waiting. ``put`` and ``close`` raise
    what ``consume`` raised; ``close`` waits until everything was consumed."""

    def __init__(self, consume: Callable[[T], None], depth: int = 3) -> None:
        self._consume = consume
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="preview-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is None:
                try:
                    self._consume(item)  # type: ignore[arg-type]
                except BaseException as exc:  # noqa: BLE001 - raised in the producer by put/close
                    self._error = exc

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        self._check()
        self._queue.put(item)

    def close(self) -> None:
        """Wait for the queued items to be consumed (also after a failure, so the thread never outlives us)."""
        self._queue.put(_DONE)
        self._thread.join()
        self._check()
