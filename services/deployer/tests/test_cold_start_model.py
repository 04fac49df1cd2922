"""The calibrated cold-start estimator (pure): priors until enough observations, then the
median per phase, robust to an outlier, scaled by the version's trial load and wheelhouse,
separate per backend, and surviving a JSON round trip (its persisted form)."""

from __future__ import annotations

import pytest
from kubeserve_deployer.domain.cold_start import ColdStartModel, VersionInputs

SMALL = VersionInputs(trial_load_ms=20.0)
BIG = VersionInputs(trial_load_ms=400.0, wheelhouse_mib=10.0)


def test_uncalibrated_until_enough_observations_then_the_measured_median() -> None:
    model = ColdStartModel()
    first = model.predict("local-warm-pool", SMALL)
    assert not first.calibrated and first.label == "estimate, not yet calibrated"
    for start, load, ready in ((30, 22, 40), (34, 18, 44), (32, 20, 42)):
        model.observe(
            "local-warm-pool", SMALL, {"start": start, "model_load": load, "first_ready": ready}
        )
    now = model.predict("local-warm-pool", SMALL)
    assert now.calibrated and now.label == "calibrated"
    assert now.phases_ms == {"start": 32, "dependencies": 0, "model_load": 20, "first_ready": 42}
    assert now.total_ms == 94


def test_an_outlier_does_not_move_the_estimate() -> None:
    model = ColdStartModel()
    for ms in (100, 110, 105, 9000, 102):
        model.observe("local-process", SMALL, {"start": ms})
    assert model.predict("local-process", SMALL).phases_ms["start"] == 105


def test_version_inputs_scale_the_load_and_install_phases() -> None:
    model = ColdStartModel()
    for _ in range(3):
        # This backend loads 1.5x slower than the trial and installs 200 ms per MiB.
        model.observe(
            "kubernetes-pod",
            BIG,
            {"start": 3000, "dependencies": 2000, "model_load": 600, "first_ready": 300},
        )
    small = model.predict("kubernetes-pod", SMALL)
    assert small.phases_ms["model_load"] == 30 and small.phases_ms["dependencies"] == 0
    big = model.predict("kubernetes-pod", VersionInputs(trial_load_ms=100.0, wheelhouse_mib=4.0))
    assert big.phases_ms["model_load"] == 150 and big.phases_ms["dependencies"] == 800
    assert big.calibrated


def test_backends_learn_separately_and_unknown_ones_are_refused() -> None:
    model = ColdStartModel()
    for _ in range(3):
        model.observe("local-warm-pool", SMALL, {"start": 10, "model_load": 20, "first_ready": 5})
    assert model.predict("local-warm-pool", SMALL).calibrated
    assert not model.predict("local-process", SMALL).calibrated
    with pytest.raises(ValueError, match="unknown backend"):
        model.predict("docker", SMALL)


def test_the_persisted_form_round_trips_and_ignores_junk() -> None:
    model = ColdStartModel()
    for ms in (10, 12, 11):
        model.observe("local-warm-pool", SMALL, {"start": ms, "model_load": 20, "first_ready": 5})
    data = model.to_json()
    data["nonsense"] = {"start": [1.0]}
    data["local-process"] = {"start": ["x", 5]}
    again = ColdStartModel.from_json(data)
    assert again.predict("local-warm-pool", SMALL) == model.predict("local-warm-pool", SMALL)
    assert again.to_json()["local-process"] == {"start": [5.0]}


def test_measured_timings_map_onto_the_phases_per_launcher() -> None:
    from kubeserve_deployer.domain.cold_start import backend_for, measured_phases

    model = ColdStartModel()
    pool = backend_for("pool")
    timings = {"fetch_ms": 5, "spawn_ms": 10, "first_health_ms": 60, "model_load_ms": 20}
    assert measured_phases(pool, timings, SMALL, model.predict(pool, SMALL)) == {
        "start": 15,
        "model_load": 20,
        "first_ready": 40,
    }
    # A plain process reports no load time: its start is what remains after the estimate.
    process = backend_for("process")
    estimate = model.predict(process, BIG)  # prior: load 1.0 x 400 ms, first_ready 100 ms
    plain = {"fetch_ms": 300, "spawn_ms": 20, "first_health_ms": 2000}
    assert measured_phases(process, plain, BIG, estimate) == {"dependencies": 300, "start": 1520}
    pod = backend_for("kubernetes")
    estimate = model.predict(pod, SMALL)
    lumped = estimate.total_ms - estimate.phases_ms["start"]
    assert measured_phases(pod, {"rollout_ms": 9000}, SMALL, estimate) == {"start": 9000 - lumped}
    assert backend_for(None) == "local-process"


def test_a_backend_is_calibrated_by_the_phases_it_measures_apart() -> None:
    from kubeserve_deployer.domain.cold_start import backend_for, measured_phases, measured_total

    model = ColdStartModel()
    process = backend_for("process")
    for total in (900, 1000, 1100):
        timings = {"fetch_ms": 0, "spawn_ms": 10, "first_health_ms": total - 10}
        phases = measured_phases(process, timings, SMALL, model.predict(process, SMALL))
        assert model.observe(process, SMALL, phases) == ["start"]
        assert measured_total(process, timings) == total
    # A plain process never tells its load apart: its start carries it, and calibrates alone.
    now = model.predict(process, SMALL)
    assert now.calibrated and now.observations == 3 and now.total_ms == 1000
    pod = backend_for("kubernetes")
    phases = measured_phases(pod, {"pod_ready_ms": 3000}, SMALL, model.predict(pod, SMALL))
    model.observe(pod, SMALL, phases)
    assert model.predict(pod, SMALL).total_ms == 3000 == measured_total(pod, {"pod_ready_ms": 3000})


def test_long_start_ids_are_stored_hashed() -> None:
    from kubeserve_deployer.domain.cold_start import start_key

    assert start_key("abc") == "abc" and start_key(None) is None
    long = start_key("x" * 200)
    assert long is not None and len(long) == 64 and long != start_key("x" * 201)
