"""Adaptive batching: concurrent requests merge into one model call and get the same answers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest


def _hammer(client, bodies: list[dict], path: str = "/predict") -> list:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda b: client.post(path, json=b), bodies))


@pytest.mark.parametrize("model_name", ["iris_pipeline", "forest", "frame_model"])
def test_batching_on_gives_the_same_answers_as_off(serve, request, iris, model_name) -> None:
    model = request.getfixturevalue(model_name)
    x, _ = iris
    rng = np.random.default_rng(1)
    # Requests of 1 to 5 rows each, sent 32 at a time.
    bodies = [{"instances": x[rng.choice(len(x), rng.integers(1, 6))].tolist()} for _ in range(64)]
    answers = {}
    for max_batch in (1, 32):
        with serve(model, "m", max_batch_size=max_batch) as client:
            responses = _hammer(client, bodies)
            assert all(r.status_code == 200 for r in responses)
            answers[max_batch] = [r.json() for r in responses]
    for off, on in zip(answers[1], answers[32], strict=True):
        assert off["predictions"] == on["predictions"]
        assert np.allclose(off["probabilities"], on["probabilities"], rtol=1e-9, atol=1e-12)


class SlowRecorder:
    """Sleeps in predict (so requests pile up) and records the rows of every call."""

    n_features_in_ = 2

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def predict(self, x):
        arr = np.asarray(x)
        if (arr < 0).any():
            raise ValueError("negative values are not allowed")
        with self.lock:
            self.calls.append(len(arr))
        time.sleep(0.05)
        return arr.sum(axis=1)


def test_concurrent_requests_share_a_model_call_and_errors_stay_with_their_request(
    serve,
) -> None:
    model = SlowRecorder()
    bodies = [{"instances": [[i, 1]]} for i in range(16)]
    bodies[5] = {"instances": [[-1, 1]]}
    with serve(model, "slow", max_batch_size=8) as client:
        responses = _hammer(client, bodies)
        metrics = client.get("/metrics").text
    for i, response in enumerate(responses):
        if i == 5:
            assert response.status_code == 400
            assert "negative values" in response.json()["error"]
        else:
            assert response.status_code == 200
            assert response.json()["predictions"] == [i + 1]
    assert max(model.calls) > 1  # some requests were merged
    assert max(model.calls) <= 8  # never above max_batch_size
    assert sum(model.calls) == 15 + 1  # the good requests, and the start-up datatype probe
    assert "kubeserve_prediction_batch_rows_bucket" in metrics


def test_batching_with_max_wait(serve, forest, iris) -> None:
    x, _ = iris
    bodies = [{"instances": x[i : i + 1].tolist()} for i in range(0, 150, 10)]
    with serve(forest, "m", max_batch_size=4, max_batch_wait_ms=5) as client:
        responses = _hammer(client, bodies)
    got = [r.json()["predictions"][0] for r in responses]
    assert got == forest.predict(x[0:150:10]).tolist()
