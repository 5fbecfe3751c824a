"""The classify task: integer labels or soft (B, C) targets, label smoothing, eval padding mask, strict kwargs."""
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from flaxzoo.train.tasks.classify import make_loss_fn

LOGITS = jnp.asarray([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, 1.0, 0.0]])


def model(x, mask=None):
    return LOGITS if mask is None else LOGITS * mask.sum()


def test_integer_and_one_hot_labels_give_the_same_loss():
    fn = make_loss_fn(label_smoothing=0.1)
    labels = jnp.asarray([0, 2, 1])
    a, ma = fn(model, {"image": None, "label": labels}, None)
    b, mb = fn(model, {"image": None, "label": jnp.eye(3)[labels]}, None)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    want = optax.softmax_cross_entropy(LOGITS, optax.smooth_labels(jnp.eye(3)[labels], 0.1)).mean()
    np.testing.assert_allclose(a, want, rtol=1e-6)
    assert float(ma["accuracy"]) == pytest.approx(2 / 3) and float(mb["accuracy"]) == pytest.approx(2 / 3)


def test_soft_targets_mask_and_errors():
    soft = jnp.asarray([[0.7, 0.3, 0.0], [0.0, 0.4, 0.6], [0.5, 0.0, 0.5]])
    loss, _ = make_loss_fn()(model, {"image": None, "label": soft}, None)
    np.testing.assert_allclose(loss, optax.softmax_cross_entropy(LOGITS, soft).mean(), rtol=1e-6)
    masked, _ = make_loss_fn()(model, {"image": None, "label": soft, "mask": jnp.asarray([1.0, 1.0, 0.0])}, None)
    np.testing.assert_allclose(masked, optax.softmax_cross_entropy(LOGITS, soft)[:2].mean(), rtol=1e-6)
    with pytest.raises(ValueError, match="num_classes"):
        make_loss_fn()(model, {"image": None, "label": jnp.ones((3, 5)) / 5}, None)
    with pytest.raises(TypeError):
        make_loss_fn(label_smoothin=0.1)  # no catch-all: a misspelt option is an error
    with pytest.raises(ValueError, match="label_smoothing"):
        make_loss_fn(label_smoothing=1.5)


def test_sequence_inputs_with_a_token_mask():
    fn = make_loss_fn(input_key="tokens", mask_key="token_mask")
    loss, _ = fn(model, {"tokens": None, "token_mask": jnp.ones((1,)), "label": jnp.asarray([0, 2, 1])}, None)
    assert np.isfinite(float(loss))
