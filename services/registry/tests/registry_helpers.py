"""Helpers of the registry tests (imported by module name: conftest files of several services
would clash): the registry under test, payloads, multipart files, and a raw-socket HTTP/1.1
client for what httpx will not do: stop mid-body, or keep streaming until the server answers
early."""

from __future__ import annotations

import select
import socket
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from kubeserve_common.security.principal import PRINCIPAL_HEADER, Principal, encode_principal
from kubeserve_registry.bootstrap import RegistryContainer
from kubeserve_registry.settings import RegistrySettings


@dataclass
class Registry:
    url: str
    container: RegistryContainer
    settings: RegistrySettings

    def auth(self, user_id: uuid.UUID) -> dict[str, str]:
        secret = self.settings.internal_secret.get_secret_value()
        return {PRINCIPAL_HEADER: encode_principal(Principal(user_id=user_id), secret, 3600)}

    def client(self, user_id: uuid.UUID | None = None, **kw: Any) -> httpx.AsyncClient:
        headers = self.auth(user_id) if user_id else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60, **kw)


def connect(base_url: str) -> socket.socket:
    parts = urlsplit(base_url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    return sock


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket, timeout: float = 30) -> tuple[int, bytes]:
    """Status and body (up to the server closing or Content-Length being reached)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while length is None or len(body) < length:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        body += chunk
    return status, body


def send_until_answered(sock: socket.socket, pieces: Iterable[bytes]) -> tuple[int, bool]:
    """Send `pieces` one by one, checking before each whether the server already answered.
    Returns (bytes sent, whether the server answered before we ran out of pieces)."""
    sent = 0
    for piece in pieces:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return sent, True
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            return sent, True
        sent += len(piece)
    readable, _, _ = select.select([sock], [], [], 10)
    return sent, bool(readable)


def model_files(
    data: bytes, filename: str = "model.joblib", requirements: bytes | None = None
) -> dict[str, tuple[str, bytes, str]]:
    files = {"model": (filename, data, "application/octet-stream")}
    if requirements is not None:
        files["requirements"] = ("requirements.txt", requirements, "text/plain")
    return files


def payload_bytes(size: int, seed: int = 0) -> bytes:
    block = uuid.UUID(int=seed).bytes * 64
    return (block * (size // len(block) + 1))[:size]


def chunked(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
