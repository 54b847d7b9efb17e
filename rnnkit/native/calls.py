"""What the cells' autograd functions share to call the kernels: whether they can run, the
kernel of a dtype, addresses of per-step slots, the buffer workspace, and the backward loop."""

from __future__ import annotations

import functools
from typing import Callable

import torch

from . import library
from .workspace import Workspace

WORKSPACE = Workspace()


def usable(projections: torch.Tensor) -> bool:
    """Whether the native kernels can run a chunk of these input projections."""
    return (projections.device.type == "cpu" and projections.dtype in (torch.float32, torch.float64)
            and not torch.is_autocast_enabled("cpu")
            # a tracer (ONNX export, torch.compile) records PyTorch operations; a C call is not one
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
            and library() is not None)


def kernel(name: str, dtype: torch.dtype):
    """The kernel `name` for dtype, set to run on as many threads as PyTorch's operations do."""
    lib = library()
    lib.native_set_threads(torch.get_num_threads())
    return getattr(lib, name + ("_f32" if dtype == torch.float32 else "_f64"))


def column_sums(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over rows of a * b, sum over rows of a) of two contiguous (R, W) tensors: the gain's and
    the bias's gradients of a normalisation, from its output's gradient a and its x̂ b."""
    R, W = a.shape
    sum_ab, sum_a = a.new_zeros(W), a.new_zeros(W)
    sums = torch.empty(2 * W, dtype=torch.float64)
    kernel("column_sums", a.dtype)(R, W, a.data_ptr(), b.data_ptr(), sums.data_ptr(), sum_ab.data_ptr(),
                                   sum_a.data_ptr())
    return sum_ab, sum_a


PACKED_MIN_WIDTH = 256  # both sides of a weight at least this wide: below it `torch.mm` is as fast


def step_multiplier(weight: torch.Tensor, rows: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """x -> x weight^T for the many (rows, in) x of one chunk, all with the same weight (out, in),
    which may be a transposed view (then only the packed branch copies it).

    oneDNN's linear with the weight packed once for the chunk (its own blocked layout), where this
    PyTorch has it, else `torch.mm`. Measured on (64 x 512) x (512 x 2048) at float32, 2 cores:
    214 GFLOP/s packed against 121 for `torch.mm`, at 64 x 256 198 against 140; packing costs about
    one step's multiply, once per chunk. At H = 128 (32 rows) it gained nothing forwards and lost
    backwards (115 against 137 GFLOP/s), hence PACKED_MIN_WIDTH."""
    weight = weight.detach()
    # torch.backends.mkldnn.enabled = False is how a user turns oneDNN off: then torch.mm
    if (weight.dtype == torch.float32 and min(weight.shape) >= PACKED_MIN_WIDTH and torch.backends.mkldnn.enabled
            and _packed_linear_works()):
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), rows)
        return lambda x: torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
    weight_t = weight.t()
    return lambda x: torch.mm(x, weight_t)


@functools.cache
def _packed_linear_works() -> bool:
    """Whether oneDNN's packed linear runs here and agrees with torch.mm (tried once): an internal
    operator of PyTorch's compiler, so a build without it, or without oneDNN, falls back."""
    if not torch.backends.mkldnn.is_available():
        return False
    generator = torch.Generator().manual_seed(0)
    x, weight = torch.randn(3, 8, generator=generator), torch.randn(16, 8, generator=generator)
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 3)
        y = torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
    except (RuntimeError, AttributeError, NotImplementedError):
        return False
    return y.shape == (3, 16) and bool(torch.allclose(y, x @ weight.t(), atol=1e-4, rtol=1e-4))


class Slots:
    """Addresses of the t-th (B, ...) slot of contiguous (T, B, ...) buffers, without making views."""

    def __init__(self, tensor: torch.Tensor) -> None:
        assert tensor.is_contiguous()
        self.base = tensor.data_ptr()
        self.stride = tensor[0].numel() * tensor.element_size() if tensor.dim() > 0 and len(tensor) else 0

    def __getitem__(self, t: int) -> int:
        return self.base + t * self.stride


def backward_start(name: str, n: torch.Tensor, grad_out: torch.Tensor | None, grad_h: torch.Tensor | None,
                   grad_c: torch.Tensor | None) -> tuple:
    """What a gated cell's backward loop starts from, n (T, B, 4H) being any saved per-step buffer
    of the gates' width: the outputs' gradients (T, B, H), dh at the last step (its output's plus
    the final h's), dc, a fresh grad_gates (it leaves the function), and grad_z (T, B, 4H) from the
    workspace with the token that holds it for the call."""
    T, B, G = n.shape
    H = G // 4
    grad_out = n.new_zeros(T, B, H) if grad_out is None else grad_out.contiguous()
    dh = grad_out[T - 1] if grad_h is None else grad_out[T - 1] + grad_h
    dc = n.new_zeros(B, H) if grad_c is None else grad_c.clone(memory_format=torch.contiguous_format)
    token, (grad_z,) = WORKSPACE.take((name + "_grad_z", n.shape, n.dtype), lambda: (n.new_empty(T, B, G),))
    return grad_out, dh, dc, n.new_empty(T, B, G), token, grad_z


def through_time(step: Callable[[int, int], None], grad_out: torch.Tensor, dh: torch.Tensor, grad_z: torch.Tensor,
                 weight_hh: torch.Tensor, hs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The backward loop of a recurrence whose step multiplies h_{t-1} by W_hh^T to get z_t:
    step(t, address of dh_t) fills grad_z[t]; then dh_{t-1} = dz_t W_hh plus the output's gradient
    at t-1 (one multiply, `step_multiplier`). Returns dh_{-1} (the initial h's gradient) and
    dW_hh = sum_t dz_t^T h_{t-1}, one multiply over the whole chunk. hs (T + 1, B, H): h_{-1} .. h_{T-1}."""
    T, B, G = grad_z.shape
    times_weight = step_multiplier(weight_hh.detach().t(), B)  # dz_t -> dz_t W_hh
    for t in range(T - 1, -1, -1):
        dh = dh.contiguous()
        step(t, dh.data_ptr())
        dh = times_weight(grad_z[t]).add_(grad_out[t - 1]) if t > 0 else times_weight(grad_z[0])
    return dh, grad_z.view(T * B, G).t() @ hs[:-1].reshape(T * B, -1)
