"""What an upload looks like to the use case: a sequence of named parts whose bytes are read
once, in order (the HTTP adapter feeds them from the multipart stream)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class IncomingPart(Protocol):
    name: str
    filename: str | None
    content_type: str | None

    def chunks(self) -> AsyncIterator[bytes]:
        """The part's bytes as they arrive; can be iterated once."""
        ...


MODEL_FIELD = "model"
REQUIREMENTS_FIELD = "requirements"
