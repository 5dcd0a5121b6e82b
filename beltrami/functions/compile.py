"""One switch for how a function module runs: ``eager``, ``script`` (TorchScript) or ``compile``
(``torch.compile`` with the inductor backend)."""
from __future__ import annotations

import warnings

import torch
from torch import nn

from ..validation import check_choice

COMPILE_MODES = ("eager", "script", "compile")


def compile_function(module: nn.Module, mode: str = "eager", **compile_kwargs) -> nn.Module:
    """Return ``module`` as is (``eager``), scripted (``script``) or compiled (``compile``).

    ``script``: ``torch.jit.script``; TorchScript is deprecated in torch 2.13 but users asked for it, so its
    deprecation warning is silenced here. ``compile``: ``torch.compile(module, dynamic=True)`` so that graphs
    of other sizes (rewiring, other datasets) reuse the compiled code instead of recompiling per shape;
    the sparse kernels are opaque custom ops inside it.
    """
    check_choice(mode, COMPILE_MODES, "compile mode")
    if mode == "eager":
        return module
    if mode == "script":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.script(module)
    return CompiledFunction(module, **compile_kwargs)


class CompiledFunction(nn.Module):
    """``torch.compile`` of a graph function whose graph-size dimensions stay dynamic.

    torch.compile treats the shapes of module buffers as static by default, and a graph function keeps its
    CSR index tensors in buffers, so every new graph (rewiring, another dataset) would recompile. Compiling
    with ``dynamic=True`` under ``force_parameter_static_shapes=False`` (which also covers buffers) gives
    one compiled graph for every graph size. Other attributes (``set_initial``, ``set_graph``, ``linear``, ...) are the wrapped
    module's.
    """

    def __init__(self, module: nn.Module, **compile_kwargs) -> None:
        # imported here, not with the package: torch's compiler stack takes a second and 190 MB to import
        import torch._functorch.config

        super().__init__()
        self.module = module
        compile_kwargs.setdefault("dynamic", True)
        # The adjoint backpropagates through f with retain_graph=True, which a backward compiled with donated
        # buffers refuses; the flag is read when that backward compiles, lazily, at the first backward (outside
        # any call of ours: a config patch around forward was tried and the adjoint test failed), so it is
        # turned off process-wide, and only when compile mode is asked for.
        torch._functorch.config.donated_buffer = False
        # Not a registered submodule: the compiled wrapper shares the module's parameters.
        object.__setattr__(self, "_compiled", torch.compile(module, **compile_kwargs))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        import torch._dynamo.config

        with torch._dynamo.config.patch(force_nn_module_property_static_shapes=False,
                                        force_parameter_static_shapes=False):
            return self._compiled(t, z)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)
