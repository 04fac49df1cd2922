"""The base of the SDK's generated models: pydantic models that ignore fields a newer server
adds, and read like the JSON object they came from (`deployment["id"]`, `.get("url")`, values
as in JSON), so code written against the dict-returning SDK keeps working."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def _as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def __getitem__(self, key: str) -> Any:
        return self._as_json()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._as_json().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._as_json()

    def keys(self) -> list[str]:
        return list(self._as_json())

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (what `-o json` prints)."""
        return self._as_json()
