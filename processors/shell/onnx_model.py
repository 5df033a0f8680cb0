"""An ONNX model, run by onnxruntime, as a regressor of the events' features.

What PyTorch, Keras or scikit-learn networks export to. Its inputs are
matched to the features at start, and a mismatch is one UsageError:
- one input of shape [rows, n] (n the number of features, or left open):
  the features in the events' order;
- one input per feature, each [rows] or [rows, 1]: matched by name, in any
  order.
The first output is the prediction, one value per row ([rows] or [rows, 1]).
Float and double inputs are fed as the model declares them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnmon.processors.run.runtime import UsageError

# What onnxruntime names the element types nnmon can feed.
_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}

Feeds = Callable[[np.ndarray], dict[str, np.ndarray]]


class OnnxRegressor:
    """`predict(matrix)`, a row per event and a column per feature (in the
    events' order), like a scikit-learn regressor's."""

    def __init__(self, session: Any, feeds: Feeds, output: str) -> None:
        self._session = session
        self._feeds = feeds
        self._output = output

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        (predicted,) = self._session.run([self._output], self._feeds(matrix))
        values = np.asarray(predicted, dtype=np.float64)
        if values.size != len(matrix):
            raise ValueError(f"the model gives {values.size // max(len(matrix), 1)} values a row, not 1")
        return values.reshape(len(matrix))


def load_onnx(path: Path, features: tuple[str, ...]) -> OnnxRegressor:
    """The model in `path`, its inputs matched to `features` and tried on
    one row (UsageError naming what does not fit)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread: the processors share the machine's cores, and one
    # thread's arithmetic does not depend on how work was split.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the message below says what went wrong
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types for a file it cannot use
        raise UsageError(f"--model-path {path}: not an ONNX model onnxruntime can run "
                         f"({_first_line(error)})") from None
    regressor = OnnxRegressor(session, _feeds(path, session.get_inputs(), features),
                              _output(path, session.get_outputs()))
    try:
        regressor.predict(np.zeros((2, len(features))))  # two rows: a batch, as model sends them
    except Exception as error:
        raise UsageError(f"--model-path {path}: the model fails on rows of the features "
                         f"({_first_line(error)})") from None
    return regressor


def _feeds(path: Path, inputs: list[Any], features: tuple[str, ...]) -> Feeds:
    for tensor in inputs:
        if tensor.type not in _DTYPES:
            raise UsageError(f"--model-path {path}: input {tensor.name} is a {tensor.type}; "
                             f"nnmon feeds float or double tensors")
        if tensor.shape and isinstance(tensor.shape[0], int):
            raise UsageError(f"--model-path {path}: input {tensor.name} takes exactly {tensor.shape[0]} "
                             "row(s) at a time: export the model with a dynamic first (batch) axis "
                             "(torch.onnx.export's dynamic_axes, for one)")
    if len(inputs) == 1 and len(inputs[0].shape) == 2:
        (tensor,) = inputs
        width = tensor.shape[1]
        if isinstance(width, int) and width != len(features):
            raise UsageError(f"--model-path {path}: the model expects {width} features, "
                             f"the events carry {len(features)} ({', '.join(features)})")
        name, dtype = tensor.name, _DTYPES[tensor.type]
        return lambda matrix: {name: matrix.astype(dtype, copy=False)}
    names = {tensor.name for tensor in inputs}
    if names != set(features):
        missing, extra = sorted(set(features) - names), sorted(names - set(features))
        raise UsageError(
            f"--model-path {path}: the model's inputs are neither one [rows, {len(features)}] tensor "
            f"nor one per feature by name"
            + (f"; no input for {', '.join(missing)}" if missing else "")
            + (f"; inputs {', '.join(extra)} are no feature" if extra else ""))
    for tensor in inputs:
        shape = tensor.shape
        if len(shape) not in (1, 2) or (len(shape) == 2 and isinstance(shape[1], int) and shape[1] != 1):
            raise UsageError(f"--model-path {path}: input {tensor.name} has the shape {tensor.shape}, "
                             f"not [rows] or [rows, 1]")
    columns = [(features.index(tensor.name), tensor.name, _DTYPES[tensor.type], len(tensor.shape))
               for tensor in inputs]

    def per_feature(matrix: np.ndarray) -> dict[str, np.ndarray]:
        return {name: (matrix[:, [j]] if rank == 2 else matrix[:, j]).astype(dtype)
                for j, name, dtype, rank in columns}

    return per_feature


def _output(path: Path, outputs: list[Any]) -> str:
    if not outputs:
        raise UsageError(f"--model-path {path}: the model has no output")
    return str(outputs[0].name)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
