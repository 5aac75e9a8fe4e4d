"""Arrays in, the same kind of array out: the lazy numpy <-> torch bridge.

torch is never imported here unless a torch tensor is passed in: the test is
on the type's module name, and the import happens inside the conversion.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _is_torch(x: object) -> bool:
    return type(x).__module__.partition(".")[0] == "torch"


def traced_op(x: object, name: str) -> Any:
    """The registered torch op ``name`` for a call on ``x``, or None for the numpy path.

    A call that ``torch.compile`` traces cannot convert to numpy, and a CUDA
    tensor has device-resident kernels: both go to the op of
    :mod:`structgrad.solvers._torch_ops` (registered at first use); a call with
    ``return_trace=True`` names ``<solver>_trace``, an op of
    :mod:`structgrad.solvers._torch_trace_ops`.
    """
    if not _is_torch(x):
        return None
    import torch

    if not (x.is_cuda or torch.compiler.is_compiling()):  # type: ignore[attr-defined]
        return None
    if name.endswith("_trace"):  # a trace-returning call (its own module of ops)
        from . import _torch_trace_ops as ops
    else:
        from . import _torch_ops as ops  # type: ignore[no-redef]
    return getattr(ops, name)


class Bridge:
    """Converts one input to numpy and converts results back to its kind.

    Torch tensors make a round trip through host memory (CUDA included) and the
    results come back on the input's device; solution arrays get the input's
    floating dtype (the default dtype for a non-floating input), index arrays
    come back as int64 (``torch.long``).
    """

    def __init__(self, x: Any, name: str) -> None:
        self.name = name
        self.torch = _is_torch(x)
        if self.torch:
            import torch

            # (each failed deep inside numpy's conversion, naming no argument)
            if x.layout != torch.strided or x.is_meta:
                raise TypeError(
                    f"{name} must be a dense tensor with values, got {x.layout} on {x.device}"
                )
            if x.is_floating_point() and x.element_size() == 1:  # float8: no numpy twin
                raise TypeError(f"{name} has dtype {x.dtype}, which is not supported")
            self.device = x.device
            self.cuda = x.is_cuda
            self.torch_dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
            # A lazily negated or conjugated view (``z.conj().imag``) has no numpy view.
            t = x.detach().resolve_conj().resolve_neg()
            if t.dtype in (torch.float16, torch.bfloat16):
                t = t.float()  # numpy has no bfloat16; the kernels run in float32
            arr = _to_host(t) if self.cuda else t.cpu().numpy()
        else:
            try:
                arr = np.asarray(x)
            except ValueError as err:  # a ragged nested list
                raise ValueError(
                    f"{name} must be a rectangular real numeric array: {err}"
                ) from None
        if (
            arr.dtype == object
            or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_)
            or np.iscomplexobj(arr)
        ):
            raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
        # The kernels compute in float64: larger integers would round onto their
        # neighbours and tie (2**53 and 2**53 + 1), a wrong answer with no error.
        if np.issubdtype(arr.dtype, np.integer) and arr.size and _beyond_float64(arr):
            raise ValueError(
                f"{name}: integers beyond ±2**53 are not exact in float64, which the "
                "solvers compute in; rescale them or pass floats"
            )
        # Long doubles round to float64 too: 1 and 1 + 2**-60 would tie.
        if arr.dtype.kind == "f" and arr.dtype.itemsize > 8 and not _exact_in_float64(arr):
            raise ValueError(
                f"{name}: {arr.dtype} values that float64 does not hold exactly; the "
                "solvers compute in float64: cast them first"
            )
        self.out_dtype = (
            arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float64)
        )
        self.array = arr

    def kernel_array(self, arr: NDArray[Any] | None = None) -> NDArray[np.floating[Any]]:
        """C-contiguous float32/float64 copy-if-needed for the kernels."""
        a = self.array if arr is None else arr
        dtype = a.dtype if a.dtype in _KERNEL_DTYPES else np.dtype(np.float64)
        if a.dtype == np.float16:
            dtype = np.dtype(np.float32)
        return np.ascontiguousarray(a, dtype=dtype)

    def solution(self, arr: NDArray[Any]) -> Any:
        """Return a 0/1 (or real) result in the input's kind and floating dtype."""
        out = arr.astype(self.out_dtype, copy=False)
        if not self.torch:
            return out
        import torch

        solution = torch.from_numpy(np.ascontiguousarray(out))
        if self.cuda:
            return _to_device(solution, self.device, self.torch_dtype)
        return solution.to(device=self.device, dtype=self.torch_dtype)

    def index(self, arr: NDArray[Any]) -> Any:
        """Return an integer (or boolean) result in the input's kind."""
        if not self.torch:
            return arr
        import torch

        # (ascontiguousarray makes a 0-d field, a trace's size or step count
        # of an unbatched input, 1-d: the numpy path and the fake ops say ())
        index = torch.from_numpy(np.ascontiguousarray(arr).reshape(np.shape(arr)))
        return _to_device(index, self.device) if self.cuda else index.to(device=self.device)


def _exact_in_float64(arr: NDArray[Any]) -> bool:
    """Whether a wide float array keeps its values in float64."""
    return bool(np.array_equal(arr.astype(np.float64), arr, equal_nan=True))


def _beyond_float64(arr: NDArray[Any]) -> bool:
    """Whether an integer array holds a value float64 cannot represent exactly nearby."""
    exact = 2**53
    return bool(int(arr.max()) > exact or int(arr.min()) < -exact)


def _to_host(t: Any) -> Any:
    """A CUDA tensor's values as a numpy array.

    The one place where CUDA tensors meet the host kernels (Chu-Liu/Edmonds,
    the assignment and the traces have no device twin): the copy goes into
    pinned memory without blocking, then waits on the stream once.
    """
    import torch

    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    host.copy_(t, non_blocking=True)
    torch.cuda.current_stream(t.device).synchronize()
    return host.numpy()


def _to_device(t: Any, device: Any, dtype: Any = None) -> Any:
    """A host tensor on the CUDA ``device`` (in ``dtype``), from pinned memory without blocking."""
    # The caching host allocator keeps the pinned block alive until the copy ends.
    return t.pin_memory().to(device, dtype=dtype, non_blocking=True)


def to_numpy_int(x: Any, name: str) -> NDArray[np.int64]:
    """An integer array (e.g. ``lengths``) from numpy, torch or Python input."""
    try:
        arr = x.detach().resolve_neg().cpu().numpy() if _is_torch(x) else np.asarray(x)
    except (ValueError, TypeError, NotImplementedError) as err:  # ragged, sparse, meta
        raise ValueError(f"{name} must be a rectangular integer array: {err}") from None
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        if (
            np.issubdtype(arr.dtype, np.floating)
            and np.all(np.isfinite(arr))
            and np.all(arr == np.round(arr))
        ):
            return arr.astype(np.int64)
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        # (the cast would wrap 2**63 to -2**63 and the message would quote that)
        raise ValueError(f"{name} is out of range, got {int(arr.max())}")
    return arr.astype(np.int64, copy=False)
