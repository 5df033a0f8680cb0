"""ONNX models as nnmon's model runs them, against onnxruntime's own answers:
a network exported by skl2onnx, a graph with one input per feature, and the
models that do not fit the events, each refused with one clear reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.neural_network import MLPRegressor

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.run.runtime import UsageError
from nnmon.processors.shell.model_file import load_predictor

FEATURES = diabetes().feature_names


def network(path: Path, tensor_type: type = FloatTensorType, width: int = len(FEATURES)) -> MLPRegressor:
    """A small network fitted on the data set, exported to `path` by skl2onnx."""
    data = diabetes()
    mlp = MLPRegressor(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(
        data.features[:, :width], data.target)
    exported = convert_sklearn(mlp, initial_types=[("input", tensor_type([None, width]))])
    path.write_bytes(exported.SerializeToString())
    return mlp


def rows(count: int) -> list[dict[str, float]]:
    data = diabetes()
    return [data.row_features(row) for row in range(count)]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("tensor_type", [FloatTensorType, DoubleTensorType])
def test_a_network_predicts_what_onnxruntime_does(tmp_path: Path, tensor_type: type) -> None:
    path = tmp_path / "net.onnx"
    mlp = network(path, tensor_type)
    predictor = load_predictor(path)
    matrix = diabetes().features[:100]
    dtype = np.float32 if tensor_type is FloatTensorType else np.float64
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": matrix.astype(dtype)})[0].reshape(-1)
    assert predictor.predict(rows(100)).tolist() == expected.astype(np.float64).tolist()
    # and it is the network skl2onnx exported (float32 arithmetic or not)
    np.testing.assert_allclose(predictor.predict(rows(100)), mlp.predict(matrix), rtol=1e-4)
    assert predictor.version.startswith("net.onnx@") and len(predictor.version) == len("net.onnx@") + 12


def per_feature_model(path: Path, inputs: list[str], weights: dict[str, float]) -> None:
    """y = sum of weight x input, one [rows, 1] double input per name."""
    nodes, terms = [], []
    for name in inputs:
        nodes.append(helper.make_node("Mul", [name, f"w_{name}"], [f"t_{name}"]))
        terms.append(f"t_{name}")
    nodes.append(helper.make_node("Sum", terms, ["y"]))
    graph = helper.make_graph(
        nodes, "weighted",
        [helper.make_tensor_value_info(name, TensorProto.DOUBLE, [None, 1]) for name in inputs],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 1])],
        [helper.make_tensor(f"w_{name}", TensorProto.DOUBLE, [1], [weights.get(name, 1.0)])
         for name in inputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def test_inputs_one_per_feature_are_matched_by_name_in_any_order(tmp_path: Path) -> None:
    path = tmp_path / "weighted.onnx"
    weights = {name: float(place + 1) for place, name in enumerate(FEATURES)}
    per_feature_model(path, list(reversed(FEATURES)), weights)
    predicted = load_predictor(path).predict(rows(50))
    expected = diabetes().features[:50] @ np.array([weights[name] for name in FEATURES])
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_models_that_do_not_fit_the_events_are_refused_with_the_reason(tmp_path: Path) -> None:
    narrow = tmp_path / "seven.onnx"
    network(narrow, width=7)
    with pytest.raises(UsageError, match="expects 7 features, the events carry 10"):
        load_predictor(narrow)

    named = tmp_path / "named.onnx"
    per_feature_model(named, [*FEATURES[:9], "height"], {})
    with pytest.raises(UsageError, match="no input for s6; inputs height are no feature"):
        load_predictor(named)

    fixed = tmp_path / "fixed.onnx"
    one_row = [("input", FloatTensorType([1, 10]))]  # as torch.onnx.export without dynamic_axes
    exported = convert_sklearn(network(tmp_path / "any.onnx"), initial_types=one_row)
    fixed.write_bytes(exported.SerializeToString())
    with pytest.raises(UsageError, match="takes exactly 1 row"):
        load_predictor(fixed)

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(UsageError, match="not an ONNX model onnxruntime can run"):
        load_predictor(garbage)
