"""What the cells' autograd functions share to call the kernels: whether they can run, the
kernel of a dtype, addresses of per-step slots, and the buffer workspace."""

from __future__ import annotations

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
    return getattr(library(), name + ("_f32" if dtype == torch.float32 else "_f64"))


class Slots:
    """Addresses of the t-th (B, ...) slot of contiguous (T, B, ...) buffers, without making views."""

    def __init__(self, tensor: torch.Tensor) -> None:
        assert tensor.is_contiguous()
        self.base = tensor.data_ptr()
        self.stride = tensor[0].numel() * tensor.element_size() if tensor.dim() > 0 and len(tensor) else 0

    def __getitem__(self, t: int) -> int:
        return self.base + t * self.stride
