"""Losses and optimizers of the CPM/PAF networks (kept apart from the training loop so that
inference never imports training). Both are registered Keras objects: checkpoints that hold them
load by name (``keras_openpose>MaskedL2``, ``keras_openpose>LeanAdam``, ``keras_openpose>MultiplierSGD``).
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


@keras.saving.register_keras_serializable(package="keras_openpose")
class LeanAdam(keras.optimizers.Adam):
    """Keras' Adam (Kingma & Ba 2015, Algorithm 1 with the step size of their Section 2,
    ``alpha_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)``) with the step's scalars computed once
    per step instead of once per variable.

    Keras computes ``t``, ``beta1^t``, ``beta2^t``, ``alpha_t`` and the constants inside every
    variable's update: 38 graph ops per variable, 4,648 of the 9,891 ops of the tiny network's
    training step (122 variables), which TensorFlow traces and optimises before the first step of
    every run. Here they are made once per :meth:`apply` and dtype: 19 ops per variable, 7,592 in
    the step (the same float32 operations on the same values, so the updates are bit-identical to
    ``keras.optimizers.Adam``: ``tests/test_train.py``); the first step of a 6-step run of the
    tiny network came 1.1 s sooner (10.8 s against 11.9 s, three runs each, interleaved). The
    moment and weight updates are Keras' own lines. ``amsgrad`` takes Keras' path unchanged.
    """

    def apply(self, grads, trainable_variables=None):
        object.__setattr__(self, "_step_scalars", {})      # not tracked state: symbolic values of one step
        try:
            return super().apply(grads, trainable_variables)
        finally:
            object.__setattr__(self, "_step_scalars", {})

    def _scalars(self, learning_rate, dtype):
        """``(alpha_t, 1 - beta1, 1 - beta2, epsilon)`` of this step in ``dtype`` (made on the
        first variable of that dtype; Keras' expressions, in its order)."""
        cache = getattr(self, "_step_scalars", None)
        if cache is not None and dtype in cache:
            return cache[dtype]
        lr = ops.cast(learning_rate, dtype)
        local_step = ops.cast(self.iterations + 1, dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, dtype), local_step)
        beta_2_power = ops.power(ops.cast(self.beta_2, dtype), local_step)
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        out = (alpha, *(ops.convert_to_tensor(c, dtype) for c in (1 - self.beta_1, 1 - self.beta_2, self.epsilon)))
        if cache is not None:
            cache[dtype] = out
        return out

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        alpha, one_minus_beta_1, one_minus_beta_2, epsilon = self._scalars(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), one_minus_beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), one_minus_beta_2))
        self.assign_sub(variable, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), epsilon)))
