"""Tiny models trained in the tests, and live runtimes serving them on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from kubeserve_common.testing.servers import serve_app
from kubeserve_runtime import create_app
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="session")
def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return x, y


@pytest.fixture(scope="session")
def iris_pipeline(iris: tuple[np.ndarray, np.ndarray]) -> Any:
    x, y = iris
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)


@pytest.fixture(scope="session")
def forest(iris: tuple[np.ndarray, np.ndarray]) -> Any:
    x, y = iris
    return RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)


@pytest.fixture(scope="session")
def frame_model(iris: tuple[np.ndarray, np.ndarray]) -> Any:
    """A model fitted on a DataFrame: it knows its feature names; classes are strings."""
    x, y = iris
    frame = pd.DataFrame(x, columns=IRIS_FEATURES)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    return LogisticRegression(max_iter=500).fit(frame, labels)


@pytest.fixture(scope="session")
def mixed_model() -> Any:
    """A pipeline over a string column and a number column (needs BYTES / records)."""
    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "green", "blue"], 200)
    size = rng.normal(size=200)
    y = ((colour == "red") | (size > 1)).astype(int)
    frame = pd.DataFrame({"colour": colour, "size": size})
    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"])], remainder="passthrough"
    )
    return make_pipeline(encode, LogisticRegression()).fit(frame, y)


Serve = Callable[..., contextlib.AbstractContextManager[httpx.Client]]


@pytest.fixture
def serve() -> Serve:
    """`with serve(model, name, **options) as client:` a live runtime on a free port."""

    @contextlib.contextmanager
    def _serve(
        model: Any, name: str = "m", version: str = "v1", **options: Any
    ) -> Iterator[httpx.Client]:
        app = create_app(model, name, version, **options)
        with serve_app(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield client

    return _serve


def _make_wheel(
    dest: Path,
    name: str,
    version: str,
    requires: tuple[str, ...] = (),
    code: str = "",
    data_purelib: bool = False,
) -> Path:
    """Write a minimal pure-Python wheel: one module, METADATA, WHEEL and RECORD; with
    `data_purelib`, the module is under `{name}-{version}.data/purelib/` instead of the root."""
    dist = f"{name}-{version}"
    module_dir = f"{dist}.data/purelib/{name}" if data_purelib else name
    files = {
        f"{module_dir}/__init__.py": f"VERSION = {version!r}\n{code}",
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)
        ),
        f"{dist}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: kubeserve-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{path},sha256={b64},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = dest / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


@pytest.fixture
def make_wheel() -> Callable[..., Path]:
    """`make_wheel(dest, name, version, requires=(), code="", data_purelib=False)`: a minimal
    pure wheel file."""
    return _make_wheel
