"""A small ensemble of multilayer perceptrons in numpy: trained with Adam, evaluated as one stack.

Each member is ``input -> ReLU(hidden[0]) -> ReLU(hidden[1]) -> 1``. Training is vectorised over a
mini-batch; prediction of one row runs every member at once (the first layers side by side in one
matrix, the second as a batched product), so one estimate is a handful of small numpy operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class TrainSettings:
    hidden: tuple[int, int] = (64, 32)
    epochs: int = 60
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0


def train_stack(x: FloatArray, y: FloatArray, rows: BoolArray, settings: TrainSettings) -> Stack:
    """Networks fitted to ``y`` (scaled to about [0, 1]) by mean squared error, member ``j`` on the
    rows where ``rows[:, j]`` is true (cross-validation folds leave their own rows out).

    All members train together: each mini-batch passes through every member at once (one wide
    first-layer product, batched second-layer products), and a member's loss counts only its own
    rows. Larger products than one member's keep a multi-core BLAS busy instead of waiting on it.
    """
    rng = np.random.default_rng(settings.seed)
    n, f = x.shape
    k = rows.shape[1]
    h1, h2 = settings.hidden
    w1 = rng.normal(0.0, np.sqrt(2.0 / f), (f, k * h1))
    b1 = np.zeros(k * h1)
    w2 = rng.normal(0.0, np.sqrt(2.0 / h1), (k, h1, h2))
    b2 = np.zeros((k, h2))
    w3 = rng.normal(0.0, np.sqrt(1.0 / h2), (k, h2))
    b3 = np.array([float(y[rows[:, j]].mean()) for j in range(k)])
    params = [w1, b1, w2, b2, w3, b3]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    weight = rows.T.astype(np.float64)  # (members, rows)
    batch = min(settings.batch, n)
    total_steps = settings.epochs * -(-n // batch)
    step = 0
    for _ in range(settings.epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            xb, yb, wb = x[idx], y[idx], weight[:, idx]
            nb = len(idx)
            z1 = (xb @ w1 + b1).reshape(nb, k, h1).transpose(1, 0, 2)  # (members, batch, h1)
            a1 = np.maximum(z1, 0.0)
            z2 = a1 @ w2 + b2[:, None, :]  # (members, batch, h2)
            a2 = np.maximum(z2, 0.0)
            out = np.einsum("mbh,mh->mb", a2, w3) + b3[:, None]
            g_out = 2.0 * wb * (out - yb) / np.maximum(wb.sum(1, keepdims=True), 1.0)
            g_w3 = np.einsum("mbh,mb->mh", a2, g_out)
            g_b3 = g_out.sum(1)
            g_z2 = g_out[:, :, None] * w3[:, None, :] * (z2 > 0)
            g_w2 = a1.transpose(0, 2, 1) @ g_z2
            g_b2 = g_z2.sum(1)
            g_z1 = (g_z2 @ w2.transpose(0, 2, 1)) * (z1 > 0)  # (members, batch, h1)
            g_z1 = g_z1.transpose(1, 0, 2).reshape(nb, k * h1)
            g_w1 = xb.T @ g_z1
            g_b1 = g_z1.sum(0)
            grads = [g_w1, g_b1, g_w2, g_b2, g_w3, g_b3]
            step += 1
            # Cosine decay to 5% of the rate: the last epochs settle instead of jittering.
            lr = settings.lr * (0.05 + 0.95 * 0.5 * (1.0 + np.cos(np.pi * step / total_steps)))
            c1, c2 = 1.0 - beta1**step, 1.0 - beta2**step
            for i, (p, grad) in enumerate(zip(params, grads, strict=True)):
                # Weight decay on the weights, not the biases (AdamW would decouple it; L2 is enough).
                g = grad + settings.weight_decay * p if i in (0, 2, 4) else grad
                m[i] = beta1 * m[i] + (1.0 - beta1) * g
                v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
                np.subtract(p, lr * (m[i] / c1) / (np.sqrt(v[i] / c2) + eps), out=p)  # in place
    return Stack(w1, b1, w2, b2, w3, b3)


class Stack:
    """Members with the same shapes, evaluated together.

    ``w1``: (inputs, members*h1); ``b1``: (members*h1,); ``w2``: (members, h1, h2); ``b2``: (members,
    h2); ``w3``: (members, h2); ``b3``: (members,).
    """

    __slots__ = ("_b2", "_w3", "b1", "b2", "b3", "h1", "members", "w1", "w2", "w3")

    def __init__(
        self, w1: FloatArray, b1: FloatArray, w2: FloatArray, b2: FloatArray, w3: FloatArray, b3: FloatArray
    ) -> None:
        self.members, self.h1 = w2.shape[0], w2.shape[1]
        self.w1, self.b1, self.w2, self.b2, self.w3, self.b3 = w1, b1, w2, b2, w3, b3
        self._b2 = b2[:, None, :]  # shapes ``forward`` broadcasts with
        self._w3 = w3[:, :, None]

    def folded(self, mu: FloatArray, scale: FloatArray) -> Stack:
        """The same members taking ``x`` where this one takes ``(x - mu) * scale`` (standardisation
        folded into the first layer: two operations fewer per estimate)."""
        w1 = self.w1 * scale[:, None]
        return Stack(w1, self.b1 - (mu * scale) @ self.w1, self.w2, self.b2, self.w3, self.b3)

    def single(self) -> Stack:
        """This stack in single precision: ``forward`` twice as fast (half the bytes to read), to
        about seven significant digits, which a RUL in cycles or seconds does not need."""
        # The arrays are typed as float64; float32 ones work the same way through every method.
        return Stack(*(a.astype(np.float32) for a in self.arrays()))  # type: ignore[arg-type]

    def forward(self, x: npt.NDArray[np.floating[Any]]) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Each member's output for one row ``x``, with the two hidden layers' activations (kept for
        ``gradient``): (members,), (members, 1, h1), (members, 1, h2)."""
        a1 = x.astype(self.w1.dtype, copy=False) @ self.w1
        a1 += self.b1
        np.maximum(a1, 0.0, out=a1)
        a1 = a1.reshape(self.members, 1, self.h1)
        a2 = a1 @ self.w2
        a2 += self._b2
        np.maximum(a2, 0.0, out=a2)
        return (a2 @ self._w3).ravel() + self.b3, a1, a2

    def gradient(self, a1: FloatArray, a2: FloatArray) -> FloatArray:
        """Gradient of the members' mean output with respect to the input row (from ``forward``)."""
        g2 = (a2[:, 0, :] > 0) * self.w3  # (members, h2)
        g1 = (self.w2 @ g2[:, :, None])[:, :, 0] * (a1[:, 0, :] > 0)  # (members, h1)
        g: FloatArray = (self.w1 @ g1.ravel()) / self.members
        return g

    def predict(self, x: FloatArray) -> FloatArray:
        """Every member's output for each row of ``x`` (rows, members)."""
        n = x.shape[0]
        a1 = np.maximum(x @ self.w1 + self.b1, 0.0).reshape(n, self.members, self.h1).transpose(1, 0, 2)
        a2 = np.maximum(a1 @ self.w2 + self.b2[:, None, :], 0.0)  # (members, rows, h2)
        out: FloatArray = (np.einsum("mrh,mh->rm", a2, self.w3) + self.b3).astype(np.float64)
        return out

    def arrays(self) -> list[FloatArray]:
        return [self.w1, self.b1, self.w2, self.b2, self.w3, self.b3]
