"""Incremental decoding of a watch stream: newline-delimited JSON events, however the bytes are chunked."""

from __future__ import annotations

from typing import Any

import orjson

from clusterset.client.errors import ApiError, error_for


class WatchDecoder:
    """Feeds on chunks, yields complete events; an ERROR event becomes its typed ApiError (410 → Gone)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already known to hold no newline

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        self._buf += chunk
        events: list[dict[str, Any]] = []
        start = 0
        search = self._scanned
        while True:
            end = self._buf.find(b"\n", search)
            if end < 0:
                break
            line = self._buf[start:end]
            if line.strip():
                events.append(self._event(bytes(line)))
            start = search = end + 1
        if start == len(self._buf):  # all of it consumed: a new buffer, as a bytearray keeps the room it once took
            self._buf = bytearray()  # (a snapshot's chunk would stay allocated for the watch's life)
        elif start:
            del self._buf[:start]
        self._scanned = len(self._buf)
        return events

    def close(self) -> list[dict[str, Any]]:
        """The last event, if the stream ended without a newline."""
        rest, self._buf = bytes(self._buf), bytearray()
        self._scanned = 0
        return [self._event(rest)] if rest.strip() else []

    def _event(self, line: bytes) -> dict[str, Any]:
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ApiError(500, {"message": f"undecodable watch event: {exc}"}, method="WATCH", path=self.path
                           ) from None
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            raise ApiError(500, {"message": f"malformed watch event: {line[:200]!r}"}, method="WATCH", path=self.path)
        if event.get("type") == "ERROR":
            status = event["object"]
            code = status.get("code")
            raise error_for(code if isinstance(code, int) and code >= 400 else 500, status, method="WATCH",
                            path=self.path)
        return event
