import numpy as np
import pytest

from models.network import NetworkConfig, ScoringNetwork, build_network, sigmoid


def test_keep_probability_is_the_lesson_p_and_keras_gets_one_minus_p() -> None:
    config = NetworkConfig(keep_probability=0.7)
    assert config.dropout_rate == pytest.approx(0.3)
    model = build_network(5, config, seed=0)
    rates = [layer.rate for layer in model.layers if layer.__class__.__name__ == "Dropout"]
    assert rates == [pytest.approx(0.3), pytest.approx(0.3)]


def test_no_dropout_layers_when_every_unit_is_kept() -> None:
    model = build_network(5, NetworkConfig(keep_probability=1.0), seed=0)
    assert not [layer for layer in model.layers if layer.__class__.__name__ == "Dropout"]


def test_every_hidden_layer_has_l2_and_relu_and_the_output_is_sigmoid_of_a_logit() -> None:
    model = build_network(5, NetworkConfig(hidden_units=(8, 4, 2), l2=0.01), seed=0, prior=0.2)
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    assert [d.units for d in dense] == [8, 4, 2, 1]
    assert all(d.kernel_regularizer is not None for d in dense[:-1])
    assert all(d.activation.__name__ == "relu" for d in dense[:-1])
    # The logit has a layer of its own, so calibration can be applied to it.
    assert dense[-1].name == "logit" and dense[-1].activation.__name__ == "linear"
    assert model.layers[-1].activation.__name__ == "sigmoid"
    # The output bias starts at the prior's log-odds.
    assert float(dense[-1].get_weights()[1][0]) == pytest.approx(np.log(0.2 / 0.8), abs=1e-6)


def test_recipe_widens_and_relaxes_regularisation_with_data_size() -> None:
    small, medium, large = (NetworkConfig.for_rows(n) for n in (1_000, 50_000, 1_000_000))
    assert small.hidden_units < medium.hidden_units
    assert len(large.hidden_units) == 3
    assert small.l2 > medium.l2 > large.l2
    assert small.keep_probability < large.keep_probability
    assert NetworkConfig.for_rows(1_000, hidden_units=(7,)).hidden_units == (7,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"keep_probability": 0.0},
        {"keep_probability": 1.5},
        {"l2": -1.0},
        {"hidden_units": ()},
        {"hidden_units": (0,)},
        {"learning_rate": 0.0},
    ],
)
def test_invalid_configurations_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        NetworkConfig(**kwargs)


def test_numpy_forward_pass_matches_keras_inference(tmp_path) -> None:
    model = build_network(7, NetworkConfig(hidden_units=(16, 8)), seed=3)
    x = np.random.default_rng(0).normal(size=(64, 7)).astype(np.float32)
    expected = np.asarray(model(x, training=False))[:, 0]
    network = ScoringNetwork.from_keras([model])
    np.testing.assert_allclose(sigmoid(network.mean_logits(x)), expected, atol=1e-6)
    network.save(tmp_path / "w.npz")
    np.testing.assert_allclose(
        sigmoid(ScoringNetwork.load(tmp_path / "w.npz").mean_logits(x)), expected, atol=1e-6
    )


def test_sigmoid_is_stable_at_extremes() -> None:
    out = sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    assert out.tolist() == [0.0, 0.5, 1.0]
