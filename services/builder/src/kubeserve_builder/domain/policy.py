"""The allow-list of globals a model's pickle may import (issue 11.5).

A global is allowed when it is on the allow-list (what scikit-learn, numpy, scipy, pandas,
xgboost, lightgbm and joblib models are made of, plus a handful of plain stdlib containers) or
when its top-level module is provided by the version's own requirements (a tenant may ship its
own estimator in a wheel: that code runs, but only in the sandbox). Everything else fails the
build. Known code-running gadgets are refused first, even when their module is importable, on
the allow-list's packages or provided by a requirement: a requirement cannot unlock `os`.

Verdicts: `dangerous` (a known gadget), `safe` (allow-listed), `requirement` (provided by the
version's requirements), `unknown` (not allowed: the build fails and the reason lists them).

Compared with picklescan (`_unsafe_globals`) and modelscan (`unsafe_globals`), which are
deny-lists that let every unlisted global pass:
- we refuse everything not allowed, so their lists only decide the *reason* we give, except
  where a global would otherwise be allowed (the packages below, a tenant's requirements);
- we add gadgets neither lists (or only newer picklescan lists): `cProfile`/`profile` (`run`
  executes a string), `pydoc.pipepager` (a shell command), `timeit`, `trace`, `code`,
  `doctest`, `logging.config` (`listen` opens a socket and evaluates what it receives),
  `numpy.testing._private.utils.runstring`, loaders of nested pickles or files inside the
  allowed packages (`numpy.load`, `pandas.read_*`, `scipy.io`, `joblib.load`), things that
  import modules by name (`pandas.compat._optional`, `pandas.set_option` -> plotting backend)
  and fetchers that reach the network (`sklearn.datasets`, `scipy.datasets`);
- modelscan refuses `operator.attrgetter` only; we refuse `operator` and `functools` whole
  (callable wrappers are never part of a fitted model's state);
- a dotted name (`sklearn` + `os.system`: protocol 4 resolves it attribute by attribute, so
  it reaches any module an allowed package imports) is refused whatever its module;
- both allow `torch` storages; we refuse `torch` (PyTorch archives are refused at upload and
  `torch.load` unpickles nested data).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

# Whole modules (and their submodules) that are dangerous to name at all.
_DANGEROUS_MODULES = {
    "os": "runs commands and touches files",
    "posix": "runs commands",
    "nt": "runs commands",
    "posixpath": "touches files",
    "subprocess": "runs commands",
    "pty": "runs commands",
    "commands": "runs commands",
    "popen2": "runs commands",
    "platform": "runs commands (popen)",
    "webbrowser": "runs commands",
    "mailcap": "runs commands",
    "pydoc": "runs commands (pipepager)",
    "runpy": "runs code",
    "code": "runs code",
    "codeop": "compiles code",
    "pdb": "runs code",
    "bdb": "runs code",
    "timeit": "runs code",
    "trace": "runs code",
    "cProfile": "runs code",
    "profile": "runs code",
    "doctest": "runs code",
    "unittest": "imports and runs code",
    "idlelib": "runs code",
    "importlib": "imports arbitrary modules",
    "imp": "imports arbitrary modules",
    "zipimport": "imports arbitrary modules",
    "pkgutil": "imports arbitrary modules",
    "sys": "changes the interpreter",
    "ctypes": "calls native code",
    "_ctypes": "calls native code",
    "cffi": "calls native code",
    "mmap": "maps memory and files",
    "fcntl": "controls file descriptors",
    "resource": "changes limits",
    "marshal": "loads code objects",
    "types": "builds functions from code objects",
    "pickle": "unpickles nested data",
    "_pickle": "unpickles nested data",
    "cPickle": "unpickles nested data",
    "pickletools": "unpickles nested data",
    "copyreg.add_extension": "changes the unpickler",
    "dill": "unpickles nested data",
    "cloudpickle": "unpickles nested data and builds functions",
    "shelve": "unpickles nested data",
    "socket": "opens network connections",
    "_socket": "opens network connections",
    "socketserver": "opens network connections",
    "ssl": "opens network connections",
    "select": "waits on descriptors",
    "selectors": "waits on descriptors",
    "http": "opens network connections",
    "httplib": "opens network connections",
    "urllib": "opens network connections",
    "urllib2": "opens network connections",
    "urllib3": "opens network connections",
    "requests": "opens network connections",
    "httpx": "opens network connections",
    "aiohttp": "opens network connections",
    "ftplib": "opens network connections",
    "smtplib": "opens network connections",
    "telnetlib": "opens network connections",
    "xmlrpc": "opens network connections",
    "asyncio": "runs commands and opens connections",
    "multiprocessing": "starts processes",
    "concurrent": "starts processes",
    "threading": "starts threads",
    "_thread": "starts threads",
    "signal": "changes signal handling",
    "shutil": "copies and deletes files",
    "tempfile": "writes files",
    "pathlib": "reads and writes files",
    "glob": "lists files",
    "io": "opens files",
    "_io": "opens files",
    "fileinput": "opens files",
    "logging": "configures handlers (logging.config.listen evaluates input)",
    "pip": "installs packages",
    "setuptools": "runs build code",
    "distutils": "runs build code",
    "ensurepip": "installs packages",
    "venv": "creates environments",
    "site": "changes the import path",
    "operator": "calls arbitrary attributes (attrgetter/methodcaller)",
    "functools": "wraps arbitrary callables",
    "inspect": "reaches frames and code",
    "gc": "reaches every object",
    "weakref": "reaches objects",
    "torch": "loads nested pickles (torch.load)",
}

# Single names in otherwise harmless (or allow-listed) modules.
_DANGEROUS_NAMES = {
    ("builtins", "eval"): "evaluates code",
    ("builtins", "exec"): "executes code",
    ("builtins", "compile"): "compiles code",
    ("builtins", "__import__"): "imports arbitrary modules",
    ("builtins", "open"): "opens files",
    ("builtins", "getattr"): "reaches arbitrary attributes",
    ("builtins", "setattr"): "changes arbitrary attributes",
    ("builtins", "delattr"): "changes arbitrary attributes",
    ("builtins", "globals"): "reaches module globals",
    ("builtins", "locals"): "reaches frames",
    ("builtins", "vars"): "reaches namespaces",
    ("builtins", "breakpoint"): "runs a debugger",
    ("builtins", "input"): "reads the terminal",
    ("builtins", "help"): "runs a pager",
    ("builtins", "exit"): "stops the interpreter",
    ("builtins", "quit"): "stops the interpreter",
    ("builtins", "memoryview"): "reaches raw memory",
    ("builtins", "apply"): "calls arbitrary callables",
    ("builtins", "execfile"): "executes code",
    ("numpy", "load"): "unpickles nested data",
    ("numpy", "loads"): "unpickles nested data",
    ("numpy", "loadtxt"): "reads files",
    ("numpy", "genfromtxt"): "reads files",
    ("numpy", "fromregex"): "reads files",
    ("numpy", "fromfile"): "reads files",
    ("numpy", "save"): "writes files",
    ("numpy", "savez"): "writes files",
    ("numpy", "savez_compressed"): "writes files",
    ("numpy", "savetxt"): "writes files",
    ("numpy", "memmap"): "maps files",
    ("numpy", "DataSource"): "opens files and URLs",
    ("pandas", "eval"): "evaluates expressions",
    ("pandas", "set_option"): "imports modules by name (plotting backend)",
    ("pandas", "option_context"): "imports modules by name (plotting backend)",
    ("joblib", "load"): "unpickles nested data",
    ("joblib.numpy_pickle", "load"): "unpickles nested data",
    ("<computed>", "<computed>"): "imports a name computed at load time (obfuscation)",
}
_BUILTINS_ALIASES = ("builtins", "__builtin__", "__builtins__")
_DOTTED = "a dotted name is an attribute path that reaches past the module (sklearn.os.system)"
# Sub-trees of allow-listed packages that read/write files, import by name, reach the
# network or run code.
_DANGEROUS_PREFIXES = (
    ("numpy.testing", "runs code (runstring)"),
    ("numpy.f2py", "compiles and runs code"),
    ("numpy.distutils", "runs build code"),
    ("numpy.ctypeslib", "calls native code"),
    ("numpy.compat", "loads modules from files"),
    ("numpy.lib.npyio", "unpickles nested data"),
    ("numpy.lib._npyio_impl", "unpickles nested data"),
    ("numpy.lib.format", "reads and writes files"),
    ("numpy.lib._datasource", "opens files and URLs"),
    ("numpy.lib.utils", "imports modules by name"),
    ("numpy._pytesttester", "runs code"),
    ("pandas.io", "reads and writes files"),
    ("pandas.compat", "imports modules by name"),
    ("pandas.core.computation", "evaluates expressions"),
    ("pandas.plotting", "imports modules by name"),
    ("pandas._config", "imports modules by name (plotting backend)"),
    ("pandas.testing", "runs code"),
    ("pandas._testing", "runs code"),
    ("pandas.util", "runs code"),
    ("scipy.io", "reads and writes files"),
    ("scipy.datasets", "downloads data"),
    ("scipy.misc", "reads files"),
    ("scipy.weave", "compiles code"),
    ("scipy._lib._testutils", "runs code"),
    ("sklearn.datasets", "downloads data and reads files"),
    ("sklearn.externals", "unpickles nested data (old joblib)"),
    ("sklearn.utils._testing", "runs code"),
    ("sklearn._build_utils", "runs build code"),
    ("xgboost.testing", "runs code"),
    ("xgboost.tracker", "opens network connections"),
    ("xgboost.collective", "opens network connections"),
    ("xgboost.rabit", "opens network connections"),
    ("xgboost.dask", "opens network connections"),
    ("xgboost.spark", "starts processes"),
    ("lightgbm.dask", "opens network connections"),
)
_DANGEROUS_NAME_PREFIXES = (("pandas", "read_", "reads files"), ("pandas", "to_", "writes files"))

# Allow-listed: the packages ordinary models are made of (their dangerous corners above).
_SAFE_PACKAGES = ("sklearn", "numpy", "scipy", "pandas", "xgboost", "lightgbm")
_SAFE_NAMES = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("joblib.numpy_pickle", "NDArrayWrapper"),
    ("copyreg", "_reconstructor"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "__newobj__"),
    ("copyreg", "__newobj_ex__"),
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("collections", "deque"),
    ("collections", "Counter"),
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "time"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("decimal", "Decimal"),
    ("fractions", "Fraction"),
    ("uuid", "UUID"),
    ("re", "_compile"),
}
_SAFE_BUILTINS = {
    "object", "set", "frozenset", "slice", "complex", "bytearray", "bytes", "range", "list",
    "dict", "tuple", "int", "float", "bool", "str", "type", "NotImplemented", "Ellipsis",
    "NoneType",
}  # fmt: skip


@dataclass(frozen=True)
class GlobalVerdict:
    module: str
    name: str
    verdict: str  # dangerous | safe | requirement | unknown
    why: str = ""

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def refused(self) -> bool:
        return self.verdict in ("dangerous", "unknown")

    def to_dict(self) -> dict[str, str]:
        out = {"global": self.dotted, "verdict": self.verdict}
        if self.why:
            out["why"] = self.why
        return out


def _root(module: str) -> str:
    return module.split(".", 1)[0]


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def gadget(module: str, name: str) -> str | None:
    """Why naming `module.name` runs code / touches files / reaches the network, or None."""
    if "." in name:
        # From protocol 4 the unpickler resolves a dotted name attribute by attribute, so it
        # reaches whatever the module imported: `sklearn` + `os.system` is `os.system`. No
        # allow-list can vouch for that path; pickle.dump writes one only for nested classes.
        return _DOTTED
    if module in _BUILTINS_ALIASES:
        return _DANGEROUS_NAMES.get(("builtins", name))
    why = _DANGEROUS_NAMES.get((module, name))
    if why:
        return why
    for prefix in (_root(module), module, f"{module}.{name}"):
        if prefix in _DANGEROUS_MODULES:
            return _DANGEROUS_MODULES[prefix]
    for prefix, reason in _DANGEROUS_PREFIXES:
        if _under(module, prefix) or _under(f"{module}.{name}", prefix):
            return reason
    for mod, start, reason in _DANGEROUS_NAME_PREFIXES:
        if module == mod and name.startswith(start):
            return reason
    return None


def classify(module: str, name: str, provided: Collection[str] = ()) -> GlobalVerdict:
    """The verdict on one global; `provided` holds the top-level modules the version's own
    requirements install (its wheels, or base-image packages it names)."""
    why = gadget(module, name)
    if why:
        return GlobalVerdict(module, name, "dangerous", why)
    if module in _BUILTINS_ALIASES:
        if name in _SAFE_BUILTINS:
            return GlobalVerdict(module, name, "safe")
        return GlobalVerdict(module, name, "unknown", "a builtin that is not a plain type")
    if module.startswith("<"):
        return GlobalVerdict(module, name, "unknown", "a copyreg extension code")
    if (module, name) in _SAFE_NAMES or _root(module) in _SAFE_PACKAGES:
        return GlobalVerdict(module, name, "safe")
    if _root(module) in provided:
        return GlobalVerdict(module, name, "requirement", f"{_root(module)} is a requirement")
    return GlobalVerdict(module, name, "unknown", "not on the allow-list nor a requirement")


def classify_all(
    globals_: list[tuple[str, str]], provided: Collection[str] = ()
) -> list[GlobalVerdict]:
    return [classify(m, n, provided) for m, n in globals_]


def describe_refused(verdicts: list[GlobalVerdict]) -> str:
    """One sentence for the build's failure reason, listing every refused global."""
    dangerous = [v for v in verdicts if v.verdict == "dangerous"]
    unknown = [v for v in verdicts if v.verdict == "unknown"]
    parts = []
    if dangerous:
        listed = ", ".join(f"{v.dotted} ({v.why})" for v in dangerous[:10])
        more = f" and {len(dangerous) - 10} more" if len(dangerous) > 10 else ""
        parts.append(f"the pickle imports dangerous globals: {listed}{more}")
    if unknown:
        listed = ", ".join(v.dotted for v in unknown[:20])
        more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        parts.append(
            f"the pickle imports globals that are neither on the allow-list nor from a package "
            f"in requirements.txt: {listed}{more}"
        )
    return (
        "; ".join(parts) + ". Loading it would run them; a model may only be made of "
        "scikit-learn/numpy/scipy/pandas/xgboost/lightgbm objects or classes of the packages "
        "its requirements.txt names"
    )
