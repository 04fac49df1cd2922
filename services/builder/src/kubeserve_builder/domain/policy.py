"""Which imported globals a pickle may name: dangerous (the build fails), safe-listed, unknown.

The scan is advice backed by the sandbox, not a proof: a pickle can reach code through any
importable callable. The dangerous list names what gives a shell, a file, the network or more
code outright; the safe list names what scikit-learn, numpy, scipy and pandas models contain.
"""

from __future__ import annotations

from dataclasses import dataclass

# Whole modules (and their submodules) that are dangerous to name at all.
_DANGEROUS_MODULES = {
    "os": "runs commands and touches files",
    "posix": "runs commands",
    "nt": "runs commands",
    "subprocess": "runs commands",
    "pty": "runs commands",
    "commands": "runs commands",
    "popen2": "runs commands",
    "platform": "runs commands (popen)",
    "runpy": "runs code",
    "code": "runs code",
    "codeop": "compiles code",
    "pdb": "runs code",
    "bdb": "runs code",
    "timeit": "runs code",
    "importlib": "imports arbitrary modules",
    "imp": "imports arbitrary modules",
    "zipimport": "imports arbitrary modules",
    "pkgutil": "imports arbitrary modules",
    "sys": "changes the interpreter",
    "ctypes": "calls native code",
    "_ctypes": "calls native code",
    "cffi": "calls native code",
    "marshal": "loads code objects",
    "types": "builds functions from code objects",
    "pickle": "unpickles nested data",
    "_pickle": "unpickles nested data",
    "cPickle": "unpickles nested data",
    "dill": "unpickles nested data",
    "cloudpickle": "unpickles nested data",
    "shelve": "unpickles nested data",
    "socket": "opens network connections",
    "_socket": "opens network connections",
    "ssl": "opens network connections",
    "http": "opens network connections",
    "urllib": "opens network connections",
    "urllib2": "opens network connections",
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
    "webbrowser": "runs commands",
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

# Single names in otherwise harmless modules.
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
    ("numpy", "fromfile"): "reads files",
    ("numpy", "save"): "writes files",
    ("numpy", "savetxt"): "writes files",
    ("numpy", "memmap"): "maps files",
    ("numpy.lib.npyio", "load"): "unpickles nested data",
    ("numpy.testing._private.utils", "runstring"): "executes code",
    ("joblib", "load"): "unpickles nested data",
    ("joblib.numpy_pickle", "load"): "unpickles nested data",
    ("pandas", "read_pickle"): "unpickles nested data",
    ("pandas.io.pickle", "read_pickle"): "unpickles nested data",
    ("<computed>", "<computed>"): "imports a name computed at load time (obfuscation)",
}
_BUILTINS_ALIASES = ("builtins", "__builtin__", "__builtins__")
_DANGEROUS_PREFIXES = (
    ("numpy.f2py", "compiles and runs code"),
    ("numpy.distutils", "runs build code"),
    ("numpy.ctypeslib", "calls native code"),
    ("numpy.testing", "runs code"),
    ("pandas.io", "reads and writes files"),
    ("scipy.weave", "compiles code"),
)

# Safe-listed: what ordinary scikit-learn / numpy / scipy / pandas models pickle.
_SAFE_PREFIXES = (
    "sklearn.",
    "numpy.",
    "scipy.",
    "pandas.",
    "xgboost.",
    "lightgbm.",
    "joblib.numpy_pickle",
)
_SAFE_NAMES = {
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy", "matrix"),
    ("numpy", "float64"),
    ("numpy", "int64"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("copyreg", "_reconstructor"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "__newobj__"),
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("collections", "deque"),
    ("collections", "Counter"),
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("decimal", "Decimal"),
}
_SAFE_BUILTINS = {
    "object", "set", "frozenset", "slice", "complex", "bytearray", "bytes", "range", "list",
    "dict", "tuple", "int", "float", "bool", "str", "type", "NotImplemented", "Ellipsis",
}  # fmt: skip


@dataclass(frozen=True)
class GlobalVerdict:
    module: str
    name: str
    verdict: str  # dangerous | safe | unknown
    why: str = ""

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"

    def to_dict(self) -> dict[str, str]:
        out = {"global": self.dotted, "verdict": self.verdict}
        if self.why:
            out["why"] = self.why
        return out


def _root(module: str) -> str:
    return module.split(".", 1)[0]


def classify(module: str, name: str) -> GlobalVerdict:
    if module in _BUILTINS_ALIASES:
        why = _DANGEROUS_NAMES.get(("builtins", name))
        if why:
            return GlobalVerdict(module, name, "dangerous", why)
        if name in _SAFE_BUILTINS:
            return GlobalVerdict(module, name, "safe")
        return GlobalVerdict(module, name, "unknown")
    why = _DANGEROUS_NAMES.get((module, name)) or _DANGEROUS_MODULES.get(_root(module))
    if why:
        return GlobalVerdict(module, name, "dangerous", why)
    for prefix, reason in _DANGEROUS_PREFIXES:
        if module == prefix or module.startswith(prefix + "."):
            return GlobalVerdict(module, name, "dangerous", reason)
    if module.startswith("<"):
        return GlobalVerdict(module, name, "unknown", "a copyreg extension code")
    if (module, name) in _SAFE_NAMES or module.startswith(_SAFE_PREFIXES):
        return GlobalVerdict(module, name, "safe")
    return GlobalVerdict(module, name, "unknown")


def classify_all(globals_: list[tuple[str, str]]) -> list[GlobalVerdict]:
    return [classify(m, n) for m, n in globals_]
