"""Losses and optimizers of the CPM/PAF networks (kept apart from the training loop so that
inference never imports training). Both are registered Keras objects: checkpoints that hold them
load by name (``keras_openpose>MaskedL2``, ``keras_openpose>MultiplierSGD``).
"""
from __future__ import annotations

import re

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_openpose")
class MaskedL2(keras.losses.Loss):
    """Caffe-style Euclidean loss with an ignore mask (Cao et al. 2017, eq. 6).

    ``y_true`` is ``(B, h, w, C + 1)``: the target then the mask ``W(p)`` (1 = counted). The loss of
    a sample is ``0.5 * sum_p,c W(p) * (y_pred - y_true)^2``; Keras averages it over the batch.
    """

    def __init__(self, name="masked_l2", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        target, mask = y_true[..., :-1], y_true[..., -1:]
        return 0.5 * ops.sum(mask * ops.square(y_pred - target), axis=(1, 2, 3))


@keras.saving.register_keras_serializable(package="keras_openpose")
class MultiplierSGD(keras.optimizers.SGD):
    """SGD with CMU's per-layer learning-rate multipliers (Caffe ``lr_mult``).

    Backbone and stage 1: kernels x1, biases x2; stages >= 2 (layer names containing
    ``stage<t>`` with ``t >= 2``): kernels x4, biases x8. For momentum SGD, multiplying a
    variable's gradient by ``m`` is the same as multiplying its learning rate by ``m``, which is
    how the multipliers are applied.
    """

    def __init__(self, *args, multipliers=(1.0, 2.0, 4.0, 8.0), **kwargs):
        super().__init__(*args, **kwargs)
        self.multipliers = tuple(multipliers)

    def _mult(self, var) -> float:
        path = getattr(var, "path", var.name)
        m = re.search(r"stage(\d+)", path)
        later = bool(m) and int(m.group(1)) >= 2
        is_bias = path.endswith("bias")
        k1, b1, k2, b2 = self.multipliers
        return (b2 if is_bias else k2) if later else (b1 if is_bias else k1)

    def apply(self, grads, trainable_variables=None):
        tv = trainable_variables if trainable_variables is not None else self._trainable_variables
        grads = [None if g is None else g * self._mult(v) for g, v in zip(grads, tv)]
        return super().apply(grads, trainable_variables)

    def get_config(self):
        return {**super().get_config(), "multipliers": list(self.multipliers)}
