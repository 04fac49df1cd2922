"""requirements.txt parsing, the dependency plan, and installing from a local wheelhouse."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from kubeserve_runtime.installing import install
from kubeserve_runtime.requirements import (
    InstallError,
    RequirementsError,
    installed_versions,
    make_plan,
    parse_requirements,
    read_frozen,
)

BAD = """\
numpy>=1.20
-e git+https://github.com/example/pkg.git#egg=pkg
https://example.com/pkg-1.0-py3-none-any.whl
pkg @ https://example.com/pkg.tar.gz
./vendor/mypkg
/abs/path/pkg-1.0.whl
-i https://mirror.example/simple
--index-url=https://mirror.example/simple
--extra-index-url https://mirror.example/simple
-f ./wheels
--trusted-host mirror.example
-r base.txt
foo==
bar>=1 --config-settings x=y
numpy<2
"""


def test_every_bad_line_is_reported_with_its_number() -> None:
    with pytest.raises(RequirementsError) as info:
        parse_requirements(BAD)
    errors = {e.line: e.message for e in info.value.errors}
    assert 1 not in errors
    assert "editable installs (-e) are not allowed" in errors[2]
    assert "URLs are not allowed" in errors[3]
    assert "URLs are not allowed" in errors[4]
    assert "local paths are not allowed" in errors[5]
    assert "local paths are not allowed" in errors[6]
    for line in (7, 8, 9, 10, 11):
        assert "index options" in errors[line]
    assert "includes (-r) are not allowed" in errors[12]
    assert "malformed requirement 'foo=='" in errors[13]
    assert "option --config-settings is not supported" in errors[14]
    assert "numpy is listed twice (also line 1)" in errors[15]
    assert "requirements.txt:13: malformed requirement" in str(info.value)


def test_comments_continuations_markers_extras_and_hashes() -> None:
    text = """\ufeff# a comment
scikit-learn==1.5.2  # trailing comment
tinypkg>=1.0 \\
    --hash=sha256:0123abcd
requests[socks] >=2 ; python_version >= "3.8"

pandas ; python_version < "3.0"
"""
    reqs = parse_requirements(text)
    assert [(r.line, r.name) for r in reqs] == [
        (2, "scikit-learn"),
        (3, "tinypkg"),
        (5, "requests"),
        (7, "pandas"),
    ]
    assert reqs[1].hashes == ("sha256:0123abcd",)
    assert reqs[2].requirement.extras == {"socks"}


def test_plan_against_the_frozen_package_set(tmp_path) -> None:
    frozen = tmp_path / "frozen-packages.txt"
    frozen.write_text("# base image\nnumpy==2.1.3\nscikit-learn==1.5.2\nJoblib==1.4.2\n")
    reqs = parse_requirements(
        'numpy>=1.26\nscikit-learn==1.3.2\njoblib\ntinypkg>=1\ncolorama ; sys_platform == "win32"\n'
    )
    plan = make_plan(reqs, read_frozen(frozen))
    assert [i.name for i in plan.satisfied] == ["numpy", "joblib"]
    assert [(i.name, i.installed) for i in plan.missing] == [("tinypkg", None)]
    # A package the image has at another version is listed, with what the image has.
    assert [(i.name, i.installed) for i in plan.conflicting] == [("scikit-learn", "1.5.2")]
    assert "1.5.2 is present but '==1.3.2' is required" in plan.conflicting[0].reason
    assert [i.name for i in plan.skipped] == ["colorama"]
    assert plan.to_dict()["to_install"] == ["tinypkg>=1", "scikit-learn==1.3.2"]


def test_plan_against_installed_distributions() -> None:
    import numpy

    plan = make_plan(parse_requirements(f"numpy=={numpy.__version__}\nnumpy-not-here-xyz\n"))
    assert [i.name for i in plan.satisfied] == ["numpy"]
    assert [i.name for i in plan.missing] == ["numpy-not-here-xyz"]
    assert installed_versions()["numpy"] == numpy.__version__


def test_frozen_file_must_be_name_equals_version(tmp_path) -> None:
    bad = tmp_path / "frozen.txt"
    bad.write_text("numpy>=1\n")
    with pytest.raises(ValueError, match="expected name==version"):
        read_frozen(bad)


@pytest.fixture
def wheelhouse(tmp_path, make_wheel) -> Path:
    """The builder's resolved closure: tinypkg needs tinydep (not in the image, shipped in
    its `.data/purelib` part) and numpy (in the image: not in the wheelhouse, never
    reinstalled)."""
    house = tmp_path / "wheelhouse"
    house.mkdir()
    make_wheel(house, "tinypkg", "1.0", ("tinydep>=2", "numpy>=1"))
    make_wheel(house, "tinydep", "2.1", data_purelib=True)
    return house


def _import_version(target: Path, module: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", f"import {module}; print({module}.VERSION)"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return out.stdout.strip()


def test_the_wheelhouse_is_installed_in_one_pip_call(tmp_path, wheelhouse) -> None:
    target = tmp_path / "site"
    plan = make_plan(parse_requirements("numpy>=1\ntinypkg==1.0\n"))
    result = install(plan, wheelhouse, target=target)
    (command,) = result.commands  # no rounds: the builder resolved the set
    assert {"--no-index", "--find-links", "--no-deps", "--target"} <= set(command)
    assert result.installed == ["tinydep==2.1", "tinypkg==1.0"]
    assert _import_version(target, "tinypkg") == "1.0"
    assert _import_version(target, "tinydep") == "2.1"  # from its .data/purelib part
    assert not list(target.glob("*.data"))
    assert not list(target.glob("numpy*"))  # satisfied by the environment: left alone

    # Nothing missing: pip is not even run.
    assert (
        install(make_plan(parse_requirements("numpy\n")), wheelhouse, target=target).commands == []
    )


def test_install_fails_clearly_when_the_wheelhouse_lacks_a_package(tmp_path, wheelhouse) -> None:
    plan = make_plan(parse_requirements("absentpkg==3\n"))
    with pytest.raises(InstallError, match=r"(?s)pip install failed \(exit 1\):.*absentpkg"):
        install(plan, wheelhouse, target=tmp_path / "site")


def test_a_wheelhouse_with_two_versions_of_a_package_is_refused(
    tmp_path, wheelhouse, make_wheel
) -> None:
    make_wheel(wheelhouse, "tinydep", "1.0")
    plan = make_plan(parse_requirements("tinypkg==1.0\n"))
    with pytest.raises(
        InstallError, match=re.escape("several versions of one package (tinydep 1.0, 2.1)")
    ):
        install(plan, wheelhouse, target=tmp_path / "site")
    assert not list((tmp_path / "site").iterdir())


def test_without_a_wheelhouse_pips_resolver_picks_what_the_image_lacks(
    tmp_path, make_wheel, monkeypatch
) -> None:
    # The configured index (here a local directory): two tinydep releases, no numpy.
    index = tmp_path / "index"
    index.mkdir()
    make_wheel(index, "tinypkg", "1.0", ("tinydep>=2", "numpy>=1"))
    make_wheel(index, "tinydep", "2.1", data_purelib=True)
    make_wheel(index, "tinydep", "1.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    target = tmp_path / "site"
    result = install(make_plan(parse_requirements("tinypkg\n")), target=target)
    assert result.installed == ["tinypkg==1.0", "tinydep==2.1"]
    assert "--dry-run" in result.commands[0] and "--no-deps" in result.commands[1]
    assert _import_version(target, "tinydep") == "2.1"
    assert not list(target.glob("numpy*"))  # the environment's numpy is kept


def test_cli_plan_and_install(tmp_path, wheelhouse) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("numpy\ntinypkg\n")
    target = tmp_path / "site"
    cmd = [sys.executable, "-m", "kubeserve_runtime.requirements"]
    plan = subprocess.run(
        [*cmd, "plan", str(reqs), "--target", str(target)], capture_output=True, text=True
    )
    assert plan.returncode == 0
    assert "missing     tinypkg" in plan.stdout and "satisfied   numpy" in plan.stdout

    args = [*cmd, "install", str(reqs), "--wheelhouse", str(wheelhouse), "--target", str(target)]
    first = subprocess.run(args, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "installed: tinydep==2.1 tinypkg==1.0" in first.stderr
    # A restart with the packages already in the target installs nothing.
    again = subprocess.run(args, capture_output=True, text=True)
    assert again.returncode == 0 and "installed:" not in again.stderr
    assert "satisfied   tinypkg" in again.stdout

    reqs.write_text("numpy\n-e .\n")
    bad = subprocess.run([*cmd, "plan", str(reqs)], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "requirements.txt:2: editable installs" in bad.stderr
