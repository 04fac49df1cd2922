"""Helpers of the builder tests: a tiny pure-Python wheel and a PEP 503 index serving it over
HTTP on 127.0.0.1, models (good and hostile) made by hand, and builds queued by hand."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import threading
import uuid
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from kubeserve_builder.domain.models import BuildStatus
from kubeserve_builder.repositories.builds import BuildRepository
from kubeserve_common.events.catalog import VersionUploaded
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.storage import ArtifactStore
from kubeserve_common.testing.wheels import make_wheel
from packaging.utils import canonicalize_name, parse_wheel_filename

PKG_NAME = "kubeserve-testpkg"
PKG_VERSION = "0.1.0"
PKG_MODULE = "ks_testpkg"

# The test package: a model class the base image does not have, and hostile classes whose
# __setstate__ never returns (one burns CPU, one waits) - they reach the trial through the
# version's wheelhouse, exactly as a tenant's own package would.
PKG_SOURCE = '''
"""A package only the local test index has."""

import numpy as np


class Doubler:
    n_features_in_ = 2

    def predict(self, x):
        return np.asarray(x, dtype=float).sum(axis=1) * 2


class Looper:
    def __setstate__(self, state):
        while True:
            pass


class Sleeper:
    def __setstate__(self, state):
        import threading

        threading.Event().wait()


class Writer:
    def __setstate__(self, state):
        with open("big.bin", "wb") as fh:
            for _ in range(1024):
                fh.write(b"x" * 1024 * 1024)
'''


def make_test_wheel(root: Path) -> tuple[Path, Path]:
    """Build `kubeserve_testpkg-0.1.0-py3-none-any.whl` under root/files; return it and a
    directory where it is unpacked (for pickling its classes in the test process)."""
    wheel = make_wheel(
        root,
        PKG_NAME,
        PKG_VERSION,
        requires=("numpy>=1.20",),
        files={f"{PKG_MODULE}/__init__.py": PKG_SOURCE.encode()},
    )
    unpacked = root / "unpacked"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(unpacked)
    return wheel, unpacked


@contextlib.contextmanager
def serve_index(root: Path, wheels: list[Path]) -> Iterator[str]:
    """A PEP 503 simple index of `wheels` (kept under root/files) over HTTP on 127.0.0.1."""
    projects: dict[str, list[str]] = {}
    for wheel in wheels:
        name = canonicalize_name(parse_wheel_filename(wheel.name)[0])
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        projects.setdefault(name, []).append(
            f'<a href="../../files/{wheel.name}#sha256={digest}">{wheel.name}</a>'
        )
    for name, links in projects.items():
        project = root / "simple" / name
        project.mkdir(parents=True, exist_ok=True)
        (project / "index.html").write_text(
            "<!DOCTYPE html><html><body>" + "".join(links) + "</body></html>"
        )
    (root / "simple" / "index.html").write_text(
        "<!DOCTYPE html><html><body>"
        + "".join(f'<a href="{name}/">{name}</a>' for name in projects)
        + "</body></html>"
    )

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


def joblib_bytes(obj: Any, **kw: Any) -> bytes:
    buf = io.BytesIO()
    joblib.dump(obj, buf, **kw)
    return buf.getvalue()


def sklearn_pipeline() -> tuple[bytes, list[str]]:
    """A StandardScaler + LogisticRegression pipeline fitted on a named DataFrame, 3 classes."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(7)
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    x = pd.DataFrame(rng.normal(size=(90, 4)), columns=names)
    y = np.repeat([0, 1, 2], 30)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    return joblib_bytes(model), names


def small_model() -> bytes:
    from sklearn.linear_model import LinearRegression

    x = np.arange(20, dtype=float).reshape(10, 2)
    return joblib_bytes(LinearRegression().fit(x, x.sum(axis=1)))


class RunsCommand:
    """Unpickling it runs a shell command (`os.system`, pickled as posix.system)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> Any:
        return (os.system, (self.command,))


class Allocates:
    """Unpickling it asks for 10 GiB."""

    def __reduce__(self) -> Any:
        return (bytearray, (10 * 1024**3,))


def hostile_pickle(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=4)


def with_package(unpacked: Path, make: str) -> bytes:
    """Pickle an instance of a class of the test package (importable only from the wheel)."""
    import importlib
    import sys

    sys.path.insert(0, str(unpacked))
    try:
        module = importlib.import_module(PKG_MODULE)
        obj = getattr(module, make).__new__(getattr(module, make))
        obj.marker = 1  # a non-empty state, so unpickling calls __setstate__
        return joblib_bytes(obj)
    finally:
        sys.path.remove(str(unpacked))
        sys.modules.pop(PKG_MODULE, None)


async def stored_upload(
    store: ArtifactStore,
    data: bytes,
    *,
    filename: str = "model.joblib",
    requirements: str = "",
    owner_id: uuid.UUID | None = None,
    sha256: str | None = None,
) -> tuple[VersionUploaded, CloudEvent]:
    """Store an artifact the way the registry does; the upload event that announces it."""
    owner, model = owner_id or uuid.uuid4(), uuid.uuid4()
    stored = await store.put_bytes(f"models/{owner}/{model}/v1/{filename}", data)
    payload = VersionUploaded(
        model_id=model,
        version_id=uuid.uuid4(),
        version_tag="v1",
        owner_id=owner,
        framework="sklearn",
        artifact_uri=stored.uri,
        filename=filename,
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        size=len(data),
        requirements=requirements,
    )
    event = CloudEvent.create(payload, service="registry", subject=f"models/{model}/versions/v1")
    return payload, event


async def queue_builds(
    container: Any, owner: uuid.UUID, n: int, at: datetime, *, not_before: datetime | None = None
) -> list[uuid.UUID]:
    """Put `n` builds of `owner` straight into the queue table, the first queued at `at`."""
    ids = []
    async with container.uow() as uow:
        repo = BuildRepository(uow.session)
        for i in range(n):
            build_id = uuid.uuid4()
            created = at + timedelta(milliseconds=i)
            await repo.add_if_absent(
                {
                    "id": build_id,
                    "version_id": uuid.uuid4(),
                    "model_id": uuid.uuid4(),
                    "owner_id": owner,
                    "version_tag": f"v{i + 1}",
                    "event_id": uuid.uuid4().hex,
                    "payload": {},
                    "status": BuildStatus.QUEUED.value,
                    "attempts": 0,
                    "not_before": not_before,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            ids.append(build_id)
        await uow.commit()
    return ids
