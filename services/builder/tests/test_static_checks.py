"""The static checks on files made here: formats by magic bytes, the joblib-aware pickle scan,
the global policy. Nothing is unpickled."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from builder_helpers import RunsCommand, sklearn_pipeline
from kubeserve_builder.domain.formats import Format, detect
from kubeserve_builder.domain.models import BuildFailure
from kubeserve_builder.domain.pickle_scan import PickleScanError, scan_pickle_stream
from kubeserve_builder.domain.policy import classify
from kubeserve_builder.services.inspection import inspect_artifact


def _inspect(tmp_path: Path, data: bytes, name: str = "model.joblib") -> object:
    path = tmp_path / name
    path.write_bytes(data)
    return inspect_artifact(path, max_bytes=1 << 30, max_decompressed=1 << 30)


def _joblib_file(tmp_path: Path, obj: object, **kw: object) -> bytes:
    path = tmp_path / "dump.joblib"
    joblib.dump(obj, path, **kw)
    return path.read_bytes()


@pytest.mark.parametrize("compress", [0, ("zlib", 3), ("gzip", 3), ("xz", 3), ("bz2", 3)])
def test_joblib_files_are_scanned_past_their_array_data(tmp_path: Path, compress: object) -> None:
    # A hostile global placed *after* numpy arrays: a plain opcode scan stops at the raw array
    # bytes joblib writes into the stream and would never see it.
    payload = {"weights": np.arange(1000.0), "then": RunsCommand("true")}
    data = _joblib_file(tmp_path, payload, compress=compress)
    result = _inspect(tmp_path, data)
    dangerous = [v.dotted for v in result.dangerous]  # type: ignore[attr-defined]
    assert dangerous == ["posix.system"]
    assert result.details["joblib_arrays"] >= 1  # type: ignore[attr-defined]


def _lying_wrapper(shapes: list[int], elsize: int) -> bytes:
    """A joblib int8 array of 8 bytes whose wrapper claims more data: `shape` set twice
    (the unpickled dict keeps the last) or a state item size numpy ignores for int8. What
    joblib then runs, a scan that believes the claim would step over as array data."""
    head = b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}("
    for n in shapes:
        head += b"X\x05\x00\x00\x00shapeK" + bytes([n]) + b"\x85"
    head += (
        b"X\x05\x00\x00\x00orderX\x01\x00\x00\x00C"
        b"X\x05\x00\x00\x00dtypecnumpy\ndtype\nX\x02\x00\x00\x00i1\x89\x88\x87R"
        b"(K\x03X\x01\x00\x00\x00|NNNJ" + elsize.to_bytes(4, "little", signed=True)
        + b"J\xff\xff\xff\xffK\x00tbub"
    )  # fmt: skip
    hidden = b"0cposix\ngetcwd\n)R" + b"C\x24" + b"x" * 36 + b"0"  # 56 bytes
    return head + b"\x00" * 8 + hidden + b"."


@pytest.mark.parametrize(("shapes", "elsize"), [([8], 8), ([64, 8], -1)])
def test_a_wrapper_cannot_hide_globals_by_overstating_its_array(
    tmp_path: Path, shapes: list[int], elsize: int
) -> None:
    data = _lying_wrapper(shapes, elsize)
    (tmp_path / "lying.joblib").write_bytes(data)
    assert joblib.load(tmp_path / "lying.joblib") == str(Path.cwd())  # the hidden call runs
    result = _inspect(tmp_path, data)
    assert [v.dotted for v in result.dangerous] == ["posix.getcwd"]  # type: ignore[attr-defined]


def test_a_wrapper_made_by_copyreg_is_followed_too(tmp_path: Path) -> None:
    # joblib reads array data after BUILD of anything that *is* a NumpyArrayWrapper, however
    # made; here the data starts with a BINBYTES opcode that would swallow the hidden call.
    made = (
        b"\x80\x02ccopyreg\n_reconstructor\ncjoblib.numpy_pickle\nNumpyArrayWrapper\n"
        b"cbuiltins\nobject\nN\x87R"
    )
    data = _lying_wrapper([8], -1).replace(
        b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81", made
    )
    data = data.replace(b"\x00" * 8, b"B\x3b\x00\x00\x00\x00\x00\x00")  # BINBYTES 3 + 56
    (tmp_path / "made.joblib").write_bytes(data)
    assert joblib.load(tmp_path / "made.joblib") == str(Path.cwd())
    result = _inspect(tmp_path, data)
    assert [v.dotted for v in result.dangerous] == ["posix.getcwd"]  # type: ignore[attr-defined]


def test_a_real_pipeline_scans_clean(tmp_path: Path) -> None:
    data, _ = sklearn_pipeline()
    result = _inspect(tmp_path, data)
    globals_ = result.details["globals"]  # type: ignore[attr-defined]
    assert globals_["dangerous"] == []
    assert globals_["unknown"] == []
    assert {"sklearn.pipeline.Pipeline", "numpy.dtype"} <= {g["global"] for g in globals_["safe"]}


def test_object_arrays_and_structured_dtypes_are_followed(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    x = np.random.default_rng(0).normal(size=(40, 3))
    forest = RandomForestClassifier(n_estimators=3).fit(x, x[:, 0] > 0)  # structured node arrays
    payload = {"forest": forest, "objects": np.array(["a", 1, None], dtype=object)}
    for protocol in (2, 4, 5):
        result = _inspect(tmp_path, _joblib_file(tmp_path, payload, protocol=protocol))
        assert result.dangerous == []  # type: ignore[attr-defined]


def test_stack_global_names_are_followed_through_the_memo() -> None:
    # STACK_GLOBAL whose module and name come from memo GETs (picklescan's evasion case).
    data = b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94h\x00h\x01\x93\x8c\x04true\x85R."
    scan = scan_pickle_stream(io.BytesIO(data), len(data))
    assert ("posix", "system") in scan.globals


def test_truncated_and_garbage_streams_are_scan_errors() -> None:
    good = pickle.dumps({"a": [1, 2, 3]}, protocol=4)
    for bad in (good[:-3], good[:11] + b"\xff" + good[11:]):
        with pytest.raises(PickleScanError):
            scan_pickle_stream(io.BytesIO(bad), len(bad))


def test_empty_oversized_and_unknown_files_fail_statically(tmp_path: Path) -> None:
    with pytest.raises(BuildFailure, match="empty"):
        _inspect(tmp_path, b"")
    with pytest.raises(BuildFailure, match="unrecognised"):
        _inspect(tmp_path, b"\x00\x01\x02 not a model" * 10)
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps(list(range(1000))))
    with pytest.raises(BuildFailure, match="limit"):
        inspect_artifact(path, max_bytes=100, max_decompressed=100)


def test_a_zip_bomb_stops_at_the_decompressed_limit(tmp_path: Path) -> None:
    data = _joblib_file(tmp_path, np.zeros(5_000_000), compress=("zlib", 9))
    path = tmp_path / "bomb.joblib"
    path.write_bytes(data)
    with pytest.raises(BuildFailure, match="expands to more than"):
        inspect_artifact(path, max_bytes=1 << 30, max_decompressed=1_000_000)


def test_formats_by_magic_bytes() -> None:
    assert detect(pickle.dumps(1, protocol=4)).format is Format.PICKLE  # type: ignore[union-attr]
    assert detect(pickle.dumps(1, protocol=0)).format is Format.PICKLE  # type: ignore[union-attr]
    assert detect(b"PK\x03\x04rest").format is Format.ZIP  # type: ignore[union-attr]
    assert detect(b"\x1f\x8b\x08\x00").format is Format.JOBLIB_GZIP  # type: ignore[union-attr]
    assert detect(b"x\x9c....").format is Format.JOBLIB_ZLIB  # type: ignore[union-attr]
    assert detect(b'{"learner": {}, "version": [2]}').format is Format.XGBOOST_JSON  # type: ignore[union-attr]
    assert detect(b"tree\nversion=v4\n").format is Format.LIGHTGBM  # type: ignore[union-attr]
    assert detect(b"\x08\x07\x12\x08skl2onnx").format is Format.ONNX  # type: ignore[union-attr]
    assert detect(b"hello world") is None
    assert detect(b"") is None


def test_policy_names_dangerous_safe_and_unknown_globals() -> None:
    assert classify("posix", "system").verdict == "dangerous"
    assert classify("subprocess", "Popen").verdict == "dangerous"
    assert classify("builtins", "eval").verdict == "dangerous"
    assert classify("__builtin__", "exec").verdict == "dangerous"
    assert classify("runpy", "run_path").verdict == "dangerous"
    assert classify("shutil", "rmtree").verdict == "dangerous"
    assert classify("importlib", "import_module").verdict == "dangerous"
    assert classify("socket", "create_connection").verdict == "dangerous"
    assert classify("numpy", "load").verdict == "dangerous"
    assert classify("builtins", "set").verdict == "safe"
    assert classify("sklearn.linear_model._logistic", "LogisticRegression").verdict == "safe"
    assert classify("numpy._core.multiarray", "_reconstruct").verdict == "safe"
    assert classify("mypackage.models", "Custom").verdict == "unknown"


# -- the allow-list (issue 11.5) -------------------------------------------------------------

# Each gadget as a pickle would call it: GLOBAL module name, one string argument, REDUCE.
_GADGETS = [
    ("cProfile", "run"),
    ("profile", "run"),
    ("pydoc", "pipepager"),
    ("timeit", "timeit"),
    ("runpy", "run_path"),
    ("code", "interact"),
    ("pdb", "run"),
    ("trace", "Trace"),
    ("pickle", "loads"),
    ("numpy.testing._private.utils", "runstring"),
    ("builtins", "exec"),
    ("builtins", "eval"),
    ("__builtin__", "eval"),
    ("os", "system"),
    ("posix", "system"),
    ("subprocess", "Popen"),
    ("subprocess", "check_output"),
]


def _calls(module: str, name: str, arg: str = "print(1)") -> bytes:
    return f"c{module}\n{name}\n(V{arg}\ntR.".encode()


@pytest.mark.parametrize(("module", "name"), _GADGETS)
def test_every_known_gadget_is_refused_even_when_a_requirement_provides_it(
    tmp_path: Path, module: str, name: str
) -> None:
    result = _inspect(tmp_path, _calls(module, name), "model.pkl")
    refused = result.judge({module.split(".")[0], "numpy", "os", "pickle"})  # type: ignore[attr-defined]
    assert [v.dotted for v in refused] == [f"{module}.{name}"]
    assert refused[0].verdict == "dangerous"


def test_a_dotted_name_cannot_reach_through_an_allowed_package(tmp_path: Path) -> None:
    # Protocol 4 resolves `sklearn` + `os.getcwd` as sklearn.os.getcwd, i.e. os.getcwd: the
    # allow-listed package is only the first hop.
    data = b"\x80\x04\x8c\x07sklearn\x8c\tos.getcwd\x93)R."
    assert pickle.loads(data) == str(Path.cwd())  # the path really reaches os
    result = _inspect(tmp_path, data, "model.pkl")
    refused = result.judge({"sklearn", "mypackage"})  # type: ignore[attr-defined]
    assert [(v.dotted, v.verdict) for v in refused] == [("sklearn.os.getcwd", "dangerous")]
    assert classify("mypackage", "helpers.subprocess.Popen", {"mypackage"}).refused


def test_globals_off_the_allow_list_are_refused_unless_a_requirement_provides_them(
    tmp_path: Path,
) -> None:
    data = _calls("mypackage.models", "Custom") + b""
    result = _inspect(tmp_path, data, "model.pkl")
    refused = result.refused  # type: ignore[attr-defined]
    assert [(v.dotted, v.verdict) for v in refused] == [("mypackage.models.Custom", "unknown")]
    assert result.judge({"mypackage"}) == []  # type: ignore[attr-defined]
    # A stdlib module nobody listed is refused too (no deny-list needed for it).
    assert classify("tarfile", "open").verdict == "unknown"
    assert classify("ctypes", "CDLL", provided={"ctypes"}).verdict == "dangerous"


def test_real_sklearn_xgboost_and_lightgbm_pickles_pass(tmp_path: Path) -> None:
    import lightgbm
    import xgboost
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = np.random.default_rng(1).normal(size=(60, 3))
    models = [
        GradientBoostingClassifier(n_estimators=3).fit(x, x[:, 0] > 0),
        HistGradientBoostingRegressor(max_iter=3).fit(x, x[:, 1]),
        TfidfVectorizer().fit(["alpha beta gamma", "beta gamma delta"]),  # regexes, sparse
        xgboost.XGBClassifier(n_estimators=3).fit(x, x[:, 0] > 0),
        lightgbm.LGBMRegressor(n_estimators=3, verbose=-1).fit(x, x[:, 1]),
    ]
    for protocol in (2, 5):
        for model in models:
            path = tmp_path / "m.pkl"
            path.write_bytes(pickle.dumps(model, protocol=protocol))
            result = inspect_artifact(path, max_bytes=1 << 30, max_decompressed=1 << 30)
            assert result.refused == [], [v.dotted for v in result.refused]
