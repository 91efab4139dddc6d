"""A small client of a running burnbox's HTTP API, for the command line."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

LONG_POLL = 30.0  # seconds one long-poll request may wait (the server allows 60)


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class Client:
    def __init__(self, url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=LONG_POLL + 15)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        response = self._http.request(method, path, **options)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"error": {"code": "http", "message": response.text[:200]}}
            raise ApiError(response.status_code, body)
        return response

    def create_inbox(self, local_part: str | None, domain: str | None) -> Any:
        body = {
            key: value
            for key, value in (("local_part", local_part), ("domain", domain))
            if value is not None
        }
        return self._call("POST", "/api/inboxes", json=body or None).json()

    def inbox(self, address: str) -> Any:
        return self._call("GET", _inbox(address)).json()

    def extend(self, address: str) -> Any:
        return self._call("POST", _inbox(address) + "/extend").json()

    def burn(self, address: str) -> None:
        self._call("DELETE", _inbox(address))

    def messages(self, address: str, limit: int = 50, **query: Any) -> list[Any]:
        params = {"limit": limit, **query}
        return list(
            self._call("GET", _inbox(address) + "/messages", params=params).json()["messages"]
        )

    def message(self, address: str, message_id: str) -> Any:
        return self._call("GET", f"{_inbox(address)}/messages/{message_id}").json()

    def raw(self, address: str, message_id: str) -> bytes:
        return self._call("GET", f"{_inbox(address)}/messages/{message_id}/raw").content

    def mark_seen(self, address: str, message_id: str) -> None:
        self._call("PATCH", f"{_inbox(address)}/messages/{message_id}", json={"seen": True})

    def wait_unseen(self, address: str, timeout: float) -> Any | None:
        """The oldest unseen message, waiting up to `timeout` s for one; None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            listed = self.messages(address, limit=100)
            unseen = [summary for summary in listed if not summary["seen"]]
            if unseen:
                return unseen[-1]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            newest = listed[0]["id"] if listed else "0"
            self.messages(address, limit=1, after=newest, wait=min(remaining, LONG_POLL))


def _inbox(address: str) -> str:
    return f"/api/inboxes/{quote(address, safe='@')}"
