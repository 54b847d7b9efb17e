"""Export to ONNX, so a trained model runs without rnnkit or PyTorch (onnxruntime, any language).

A language model is exported as its generation step: one token per sequence in, the next token's
logits out, with the recurrent state carried by the caller:

    inputs:  token (B,) int64, state_h (L, B, H) float32 [, state_c (L, B, H) for LSTM-family cells]
    outputs: logits (B, V), state_h_out [, state_c_out]        (start from zero states)

A classifier or regressor directory is exported as its whole forward pass over texts of one
length: tokens (B, T) int64 -> outputs (B, K) (class logits, or standardised values).

The model's metadata (`metadata_props`) says how to turn text into token ids and back: for a
language model its vocabulary kind and symbols (code points or bytes, in id order), for an
estimator its tokenizer, classes and target scaling, as JSON. The doc string carries rnnkit's
signature, so a file rnnkit wrote may be replaced without --force.

Writing the file needs the onnx package, running it onnxruntime (`pip install 'rnnkit[onnx]'`).
"""

from __future__ import annotations

import importlib.util
import io
import json
from typing import Any

import torch
from torch import nn

from .errors import UsageError

OPSET = 18
SIGNATURE = '{"written_by": "rnnkit"}'  # in the model's doc string, which comes before the graph


def require_onnx() -> None:
    if importlib.util.find_spec("onnx") is None:
        raise UsageError("ONNX export needs the onnx package; pip install 'rnnkit[onnx]'")


class StepByStep(nn.Module):
    """A stack of custom cells run by their step functions: a scan's own backward pass (minGRU,
    minLSTM) is not something the exporter can trace, and the steps compute the same outputs."""

    def __init__(self, recurrent) -> None:
        super().__init__()
        self.recurrent = recurrent

    def forward(self, x: torch.Tensor, state: tuple | None = None):
        if state is None:
            state = self.recurrent.init_state(x.shape[0], x.device, x.dtype)
        return self.recurrent.forward_steps(x, state, scan=False)


def torch_module(recurrent) -> nn.Module:
    """The same stack as one `torch.nn` LSTM, GRU or RNN module (batch first) holding copies of its
    weights, when its cells are standard; else the stack run step by step. The exporter turns the
    torch.nn module into ONNX's own recurrent operators, with the sequence length left free.
    A stack of standard cells that the layer itself does not run fused (residual stacking, zoneout's
    expectation at evaluation) is exported step by step too: a torch.nn module would drop that arithmetic."""
    if not recurrent.is_fused:
        return StepByStep(recurrent)
    mode = recurrent.cells[0].fused_mode
    kind = {"LSTM": nn.LSTM, "GRU": nn.GRU}.get(mode, nn.RNN)
    extra = {} if mode in ("LSTM", "GRU") else {"nonlinearity": "tanh" if mode == "RNN_TANH" else "relu"}
    module = kind(recurrent.cells[0].weight_ih.shape[1], recurrent.hidden_size, recurrent.num_layers,
                  batch_first=True, bidirectional=recurrent.bidirectional, **extra)
    weights = {}
    for cells, suffix in recurrent._directions():
        for k, cell in enumerate(cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                weights[f"{name}_l{k}{suffix}"] = getattr(cell, name).detach()
    module.load_state_dict(weights)
    return module.eval()


def _run(module: nn.Module, x: torch.Tensor, state: tuple | None):
    """(outputs, new state as a tuple) from a torch.nn module or a `StepByStep` stack."""
    if isinstance(module, (nn.LSTM, nn.GRU, nn.RNN)):
        hx = None if state is None else (state if isinstance(module, nn.LSTM) else state[0])
        out, new = module(x, hx)
        return out, (tuple(new) if isinstance(new, tuple) else (new,))
    return module(x, state)


class LanguageModelStep(nn.Module):
    """One generation step of a language model, states in and out as separate tensors."""

    def __init__(self, model) -> None:
        super().__init__()
        self.embed, self.recurrent, self.head = model.embed, torch_module(model.recurrent), model.head

    def forward(self, token: torch.Tensor, *state: torch.Tensor):
        out, new = _run(self.recurrent, self.embed(token)[:, None, :], tuple(state))  # (B, 1, H)
        return (self.head(out[:, 0]), *new)


class EstimatorForward(nn.Module):
    """A classifier's or regressor's network over unpadded texts of one length (B, T)."""

    def __init__(self, network) -> None:
        super().__init__()
        self.embed, self.recurrent, self.head = network.embed, torch_module(network.recurrent), network.head
        self.pooling, self.hidden_size = network.pooling, network.recurrent.hidden_size

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        from .models.classifier import pool_outputs
        out = _run(self.recurrent, self.embed(tokens), None)[0]  # (B, T, H*): no padding anywhere
        lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long)
        return self.head(pool_outputs(out, lengths, self.pooling, self.hidden_size))


def language_model_onnx(model) -> bytes:
    """The ONNX bytes of a loaded language model's (`rnnkit.load`) generation step."""
    module = model.module.eval().float().cpu()
    recurrent = module.recurrent
    names = [f"state_{n}" for n in recurrent.state_names]
    state = tuple(torch.zeros(recurrent.num_layers, 2, recurrent.hidden_size) for _ in names)
    token = torch.zeros(2, dtype=torch.long)
    axes = {"token": {0: "batch"}, **{n: {1: "batch"} for n in names}, "logits": {0: "batch"},
            **{f"{n}_out": {1: "batch"} for n in names}}
    metadata = {"rnnkit_kind": "language_model_step", "vocabulary": json.dumps(model.vocab.to_json()),
                "state_names": json.dumps(names)}
    # the wrapper in evaluation mode too: the exporter restores the mode it found, and a new module
    # is in training mode, which would leave the model's own layers training after the export
    return _export(LanguageModelStep(module).eval(), (token, *state), ["token", *names],
                   ["logits", *[f"{n}_out" for n in names]], axes, metadata)


def estimator_onnx(estimator) -> bytes:
    """The ONNX bytes of a fitted RNNClassifier's or RNNRegressor's network."""
    network = estimator.model_.eval().float().cpu()
    if getattr(estimator, "features_", None) is not None:
        raise UsageError("this model reads numeric sequences; ONNX export covers models of text")
    if getattr(estimator, "nbsvm_", None) is not None:
        raise UsageError("this classifier stacks an NBSVM beside its network, which ONNX export leaves out; "
                         "train it with --ensemble none to export it")
    tokens = torch.ones(2, 5, dtype=torch.long)
    fitted = estimator._fitted_state()
    metadata = {"rnnkit_kind": type(estimator).__name__, "tokenizer": json.dumps(fitted["tokenizer"]),
                "fitted": json.dumps({k: v for k, v in fitted.items() if k != "tokenizer"})}
    return _export(EstimatorForward(network).eval(), (tokens,), ["tokens"], ["outputs"],
                   {"tokens": {0: "batch", 1: "length"}, "outputs": {0: "batch"}}, metadata)


def _export(module: nn.Module, args: tuple, inputs: list[str], outputs: list[str], axes: dict[str, dict[int, str]],
            metadata: dict[str, str]) -> bytes:
    """ONNX bytes of `module` run on `args`, with the named axes left free. PyTorch's TorchScript-based
    exporter, not the torch.export-based one: that one specialised the sequence length of the LSTM
    operator to the example's on its second use in a process (seen with torch 2.13), while this one
    writes ONNX's own LSTM, GRU and RNN operators with every axis free."""
    require_onnx()
    import onnx
    import warnings
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, buffer, dynamo=False, input_names=inputs, output_names=outputs,
                              dynamic_axes=axes, opset_version=OPSET)
    except Exception as e:  # the exporter's many error types; a cell it cannot express is the usual cause
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"PyTorch could not export this model to ONNX ({first[:200]})") from None
    proto = onnx.load_model_from_string(buffer.getvalue())
    proto.doc_string = SIGNATURE
    proto.producer_name = "rnnkit"
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def metadata_of(data: bytes) -> dict[str, Any]:
    """The metadata an exported model carries (for tests and users' own loaders)."""
    import onnx
    proto = onnx.load_model_from_string(data)
    return {entry.key: entry.value for entry in proto.metadata_props}
