"""Static pickle scan: which globals would unpickling import, without unpickling anything.

`pickletools.genops` only parses opcodes; a small symbolic stack machine on top of it follows
STACK_GLOBAL arguments through the memo (the evasion picklescan also handles) and understands
joblib's format, which writes raw numpy array bytes in the middle of the pickle stream right
after each `NumpyArrayWrapper` - a plain opcode scan stops there and misses every global that
follows. Object arrays are nested pickles, scanned too. Anything the machine cannot follow is a
scan error: the file is then corrupt or deliberately obfuscated, and the build fails.

The classification (dangerous / safe-listed / unknown) is in `policy.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import IO, Any

from kubeserve_builder.domain.pickle_ops import read_ops

_MAX_OPS = 50_000_000  # a model has millions of ops at most; beyond is a denial-of-service file
_MAX_DEPTH = 8  # nested object-array pickles


class PickleScanError(Exception):
    """The stream is not a well-formed pickle (truncated, garbage, or obfuscated)."""


@dataclass
class PickleScan:
    protocol: int | None = None
    globals: list[tuple[str, str]] = field(default_factory=list)
    pickles: int = 0
    joblib_arrays: int = 0
    notes: list[str] = field(default_factory=list)

    def add_global(self, module: str, name: str) -> None:
        if (module, name) not in self.globals:
            self.globals.append((module, name))


class _Mark:
    pass


_MARK = _Mark()


@dataclass
class _Global:
    module: str
    name: str


@dataclass
class _Call:
    func: Any
    args: Any
    state: Any = None


class _Dict:
    """A dict of the pickle's values; keys may be unhashable stand-ins, so a list of pairs."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, Any]] = []

    def get(self, key: str) -> Any:
        """The value the unpickled dict would hold: the last one set (a key may repeat)."""
        for k, v in reversed(self.items):
            if k == key:
                return v
        return None

    def has(self, key: str) -> bool:
        return any(k == key for k, _ in self.items)


class _Opaque:
    pass


_PUSH_ARG = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
    "BYTEARRAY8", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
}  # fmt: skip
_STRINGS = (str, bytes)


def scan_pickle_stream(fh: IO[bytes], size: int) -> PickleScan:
    """Scan every pickle in `fh` (a seekable binary file of `size` bytes) from its position.

    Raises `PickleScanError` when the stream is not a pickle that unpickling could follow.
    """
    result = PickleScan()
    _Machine(fh, size, result, depth=0).run()
    while _more(fh, size):
        # Bytes after the first STOP: pickle.load ignores them, but a second pickle there
        # is scanned too (pickle files sometimes hold several dumps).
        start = fh.tell()
        try:
            _Machine(fh, size, result, depth=0).run()
        except PickleScanError:
            result.notes.append(f"{size - start} trailing bytes after the pickle are not a pickle")
            break
    return result


def _more(fh: IO[bytes], size: int) -> bool:
    """Bytes left after a STOP? A forward-only stream (decompressing) knows; a file by size."""
    at_end = getattr(fh, "at_end", None)
    if at_end is not None:
        return not at_end()
    return fh.tell() < size


class _Machine:
    def __init__(self, fh: IO[bytes], size: int, result: PickleScan, depth: int) -> None:
        self.fh, self.size, self.result, self.depth = fh, size, result, depth
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}

    # -- stack helpers ---------------------------------------------------------------------
    def pop(self) -> Any:
        if not self.stack:
            raise PickleScanError("stack underflow")
        value = self.stack.pop()
        if value is _MARK:
            raise PickleScanError("unexpected MARK")
        return value

    def pop_mark(self) -> list[Any]:
        items: list[Any] = []
        while self.stack:
            value = self.stack.pop()
            if value is _MARK:
                items.reverse()
                return items
            items.append(value)
        raise PickleScanError("no MARK on the stack")

    def top(self) -> Any:
        if not self.stack or self.stack[-1] is _MARK:
            raise PickleScanError("stack underflow")
        return self.stack[-1]

    # -- the machine -----------------------------------------------------------------------
    def run(self) -> None:
        pos = self.fh.tell()
        count = 0
        try:
            for op, arg, at in read_ops(self.fh):
                pos = at
                count += 1
                if count > _MAX_OPS:
                    raise PickleScanError(f"more than {_MAX_OPS} opcodes")
                if self.step(op.name, arg):
                    self.result.pickles += 1
                    return
        except PickleScanError as exc:
            raise PickleScanError(f"{exc} (at byte {pos})") from None
        except (ValueError, EOFError, UnicodeDecodeError, OverflowError) as exc:
            # genops' own complaints: unknown opcode, truncated argument, no STOP.
            raise PickleScanError(f"{exc} (at byte {pos})") from None
        raise PickleScanError("pickle ended without STOP")

    def step(self, name: str, arg: Any) -> bool:
        push = self.stack.append
        if name in _PUSH_ARG:
            push(arg)
        elif name == "PROTO":
            if self.result.protocol is None:
                self.result.protocol = int(arg)
        elif name == "FRAME":
            pass
        elif name == "STOP":
            self.pop()
            return True
        elif name == "NONE":
            push(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            push(name == "NEWTRUE")
        elif name == "EMPTY_LIST":
            push([])
        elif name == "EMPTY_DICT":
            push(_Dict())
        elif name == "EMPTY_TUPLE":
            push(())
        elif name == "EMPTY_SET":
            push(_Opaque())
        elif name == "MARK":
            push(_MARK)
        elif name == "TUPLE":
            push(tuple(self.pop_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [self.pop() for _ in range(n)]
            push(tuple(reversed(items)))
        elif name == "LIST":
            push(self.pop_mark())
        elif name == "DICT":
            items = self.pop_mark()
            d = _Dict()
            d.items = list(zip(items[::2], items[1::2], strict=False))
            push(d)
        elif name == "APPEND":
            value = self.pop()
            target = self.top()
            if isinstance(target, list):
                target.append(value)
        elif name == "APPENDS":
            values = self.pop_mark()
            target = self.top()
            if isinstance(target, list):
                target.extend(values)
        elif name == "SETITEM":
            value, key = self.pop(), self.pop()
            target = self.top()
            if isinstance(target, _Dict):
                target.items.append((key, value))
        elif name == "SETITEMS":
            items = self.pop_mark()
            target = self.top()
            if isinstance(target, _Dict):
                target.items.extend(zip(items[::2], items[1::2], strict=False))
        elif name == "ADDITEMS":
            self.pop_mark()
            self.top()
        elif name == "FROZENSET":
            self.pop_mark()
            push(_Opaque())
        elif name == "POP":
            self.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            push(self.top())
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[int(arg)] = self.top()
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.top()
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if int(arg) not in self.memo:
                raise PickleScanError(f"memo key {arg} read before it was written")
            push(self.memo[int(arg)])
        elif name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            self.result.add_global(module, attr)
            if name == "GLOBAL":
                push(_Global(module, attr))
            else:
                push(_Call(_Global(module, attr), tuple(self.pop_mark())))
        elif name == "STACK_GLOBAL":
            attr, module = self.pop(), self.pop()
            if not isinstance(module, str) or not isinstance(attr, str):
                # Computed names (from a call's result) hide what is imported: that is
                # obfuscation, never produced by pickle.dump.
                self.result.add_global("<computed>", "<computed>")
                push(_Global("<computed>", "<computed>"))
            else:
                self.result.add_global(module, attr)
                push(_Global(module, attr))
        elif name == "OBJ":
            items = self.pop_mark()
            if not items:
                raise PickleScanError("OBJ without a class")
            push(_Call(items[0], tuple(items[1:])))
        elif name == "NEWOBJ":
            args, cls = self.pop(), self.pop()
            push(_Call(cls, args))
        elif name == "NEWOBJ_EX":
            _kwargs, args, cls = self.pop(), self.pop(), self.pop()
            push(_Call(cls, args))
        elif name == "REDUCE":
            args, func = self.pop(), self.pop()
            push(_Call(func, args))
        elif name == "BUILD":
            state = self.pop()
            obj = self.top()
            if isinstance(obj, _Call):
                obj.state = state
                if _is_joblib_wrapper(obj.func) or _is_copyreg_wrapper(obj):
                    self._skip_joblib_array(state)
        elif name in ("EXT1", "EXT2", "EXT4"):
            self.result.add_global("<copyreg-extension>", str(arg))
            push(_Global("<copyreg-extension>", str(arg)))
        elif name == "PERSID":
            push(_Opaque())
        elif name == "BINPERSID":
            self.pop()
            push(_Opaque())
        elif name in ("NEXT_BUFFER",):
            push(_Opaque())
        elif name == "READONLY_BUFFER":
            self.top()
        else:
            raise PickleScanError(f"unsupported opcode {name}")
        return False

    # -- joblib ------------------------------------------------------------------------------
    def _skip_joblib_array(self, state: Any) -> None:
        """Step over the array bytes joblib wrote right after the wrapper (see module doc)."""
        if not isinstance(state, _Dict):
            raise PickleScanError("joblib array wrapper without a state dict")
        self.result.joblib_arrays += 1
        shape, dtype = state.get("shape"), state.get("dtype")
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise PickleScanError("joblib array wrapper with an unreadable shape")
        kind, itemsize = _dtype_layout(dtype)
        if kind == "object":
            if self.depth >= _MAX_DEPTH:
                raise PickleScanError("object arrays nested too deep")
            _Machine(self.fh, self.size, self.result, self.depth + 1).run()
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            # joblib >= 1.2 writes one byte with the padding length, then the padding; older
            # wrappers (or unseekable targets) have no alignment and no padding byte.
            pad = self.fh.read(1)
            if len(pad) != 1:
                raise PickleScanError("truncated joblib array padding")
            self._skip(pad[0])
        self._skip(prod(shape) * itemsize)

    def _skip(self, n: int) -> None:
        target = self.fh.tell() + n
        # A forward stream (decompressing) enforces its own limit and ends with EOFError.
        if not hasattr(self.fh, "at_end") and target > self.size:
            raise PickleScanError("joblib array data runs past the end of the file")
        self.fh.seek(target)  # a forward stream raises EOFError when the data ends first


def _is_joblib_wrapper(func: Any) -> bool:
    return (
        isinstance(func, _Global)
        and func.name == "NumpyArrayWrapper"
        and func.module
        in (
            "joblib.numpy_pickle",
            "sklearn.externals.joblib.numpy_pickle",
        )
    )


def _is_copyreg_wrapper(call: _Call) -> bool:
    """`copyreg._reconstructor(NumpyArrayWrapper, ...)`: a wrapper too, to joblib (it checks
    the built object's type, not how it was made)."""
    return (
        isinstance(call.func, _Global)
        and _root(call.func.module) in ("copyreg", "copy_reg")
        and isinstance(call.args, tuple)
        and bool(call.args)
        and _is_joblib_wrapper(call.args[0])
    )


def _dtype_layout(dtype: Any) -> tuple[str, int]:
    """('object', 0) or ('plain', itemsize) for a pickled `numpy.dtype(...)` call."""
    if not (
        isinstance(dtype, _Call)
        and _is_numpy_dtype(dtype.func)
        and isinstance(dtype.args, tuple)
        and dtype.args
    ):
        # Only `numpy.dtype(code)` says its size; any other call could return another dtype.
        raise PickleScanError("joblib array wrapper with an unreadable dtype")
    code = dtype.args[0]
    if not isinstance(code, str) or not code:
        raise PickleScanError("joblib array wrapper with an unreadable dtype")
    state = dtype.state
    if isinstance(state, tuple) and len(state) >= 6:
        subarray, names, elsize = state[2], state[3], state[5]
        if subarray is not None:
            raise PickleScanError("joblib array of a sub-array dtype (not followed by the scan)")
        if code[0] == "O":
            return "object", 0
        if names is not None and not _plain_fields(state[4]):
            # A structured dtype holding objects is pickled another way: not followed.
            raise PickleScanError("joblib array of a structured dtype with objects or sub-arrays")
        # numpy takes the state's size for flexible kinds only (bytes, str, void/structured);
        # for the others it keeps the code's, whatever the state says.
        if code.lstrip("<>=|")[:1] in _FLEXIBLE and isinstance(elsize, int) and elsize > 0:
            return "plain", elsize
    if code[0] == "O":
        return "object", 0
    digits = code.lstrip("<>=|").lstrip("biufcmMSUVa?")
    kind = code.lstrip("<>=|")[:1]
    if kind == "?":
        return "plain", 1
    if not digits.isdigit():
        raise PickleScanError(f"joblib array of dtype {code!r} (not followed by the scan)")
    size = int(digits)
    return "plain", size * 4 if kind == "U" else size


_FLEXIBLE = ("S", "a", "U", "V")


def _is_numpy_dtype(func: Any) -> bool:
    return isinstance(func, _Global) and func.name == "dtype" and _root(func.module) == "numpy"


def _root(module: str) -> str:
    return module.split(".", 1)[0]


def _plain_fields(fields: Any) -> bool:
    """Whether every field of a structured dtype is a plain (non-object, flat) dtype."""
    if not isinstance(fields, _Dict):
        return False
    for _, spec in fields.items:
        if not (isinstance(spec, tuple) and spec):
            return False
        try:
            kind, _size = _dtype_layout(spec[0])
        except PickleScanError:
            return False
        if kind != "plain":
            return False
    return True
