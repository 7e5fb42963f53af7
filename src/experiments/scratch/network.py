"""The note's from-scratch net ("Implementation of Neural Net in Python"): one ReLU hidden layer, a softmax
output, mean cross-entropy, full-batch gradient descent. NumPy only, on purpose: no torch import here.

The layout follows the note so the code reads next to its equations: examples are COLUMNS, X is
(features, N), W is (out, in), b is (out, 1), and z = W a + b. Where this departs from the printed code:

- ReLU'(z) is `z > 0` applied to the whole array. The printed `np.vectorize(ReLU_d)` calls a Python
  function once per element (slow) for something NumPy already does element-wise.
- Bias gradients keep their (out, 1) column shape (`keepdims=True`). The printed `error.sum(axis=1)` gives
  shape (out,), and only the `reshape(-1, 1)` in `update_params` saves it: without it, (out, 1) - (out,)
  broadcasts to an (out, out) matrix and training goes on silently with a wrong shape.
- The softmax shifts by the column max (as printed) but takes exp once, not twice, and keeps the max as a
  column so the subtraction is per example by construction. The printed `softMax_d` is never used: with
  softmax and cross-entropy, delta[L] = a[L] - y, as the note derives.
- The printed shape comments speak of 12 hidden units; the net has `hidden` (10 in the note).
"""

from dataclasses import dataclass

import numpy as np

INITS = ("uniform", "he")


@dataclass
class Params:
    W1: np.ndarray  # (hidden, features)
    b1: np.ndarray  # (hidden, 1)
    W2: np.ndarray  # (classes, hidden)
    b2: np.ndarray  # (classes, 1)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}


@dataclass
class Forward:
    Z1: np.ndarray
    A1: np.ndarray
    Z2: np.ndarray
    A2: np.ndarray  # softmax probabilities, (classes, N)


def initialize(features: int, hidden: int, classes: int, scheme: str, rng: np.random.Generator) -> Params:
    """`uniform`: every weight and bias from U(-1, 1), as the note's `initialize_params`.
    `he`: weights from N(0, 2 / fan_in), biases zero (the note's "Weight Initialization" for ReLU)."""
    if scheme == "uniform":
        return Params(
            W1=rng.uniform(-1, 1, size=(hidden, features)),
            b1=rng.uniform(-1, 1, size=(hidden, 1)),
            W2=rng.uniform(-1, 1, size=(classes, hidden)),
            b2=rng.uniform(-1, 1, size=(classes, 1)),
        )
    if scheme == "he":
        return Params(
            W1=rng.normal(0.0, np.sqrt(2.0 / features), size=(hidden, features)),
            b1=np.zeros((hidden, 1)),
            W2=rng.normal(0.0, np.sqrt(2.0 / hidden), size=(classes, hidden)),
            b2=np.zeros((classes, 1)),
        )
    raise ValueError(f"init={scheme!r}: choose from {', '.join(INITS)}")


def relu(Z: np.ndarray) -> np.ndarray:
    return np.maximum(Z, 0.0)


def softmax(Z: np.ndarray) -> np.ndarray:
    """Column-wise softmax; shifting by each column's max leaves it unchanged and keeps exp from overflowing."""
    shifted = np.exp(Z - Z.max(axis=0, keepdims=True))
    return shifted / shifted.sum(axis=0, keepdims=True)


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """(classes, N): column n is the standard unit vector of labels[n]."""
    encoded = np.zeros((classes, labels.size))
    encoded[labels, np.arange(labels.size)] = 1.0
    return encoded


def forward(params: Params, X: np.ndarray) -> Forward:
    Z1 = params.W1 @ X + params.b1
    A1 = relu(Z1)
    Z2 = params.W2 @ A1 + params.b2
    return Forward(Z1, A1, Z2, softmax(Z2))


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean over examples of -ln(probability of the true class)."""
    picked = probabilities[labels, np.arange(labels.size)]
    return float(-np.log(np.maximum(picked, np.finfo(probabilities.dtype).tiny)).mean())


def backward(params: Params, X: np.ndarray, labels: np.ndarray, cache: Forward) -> Params:
    """Gradients of the mean cross-entropy, by the note's backpropagation formulas:
    delta2 = a2 - y;  delta1 = relu'(z1) * W2^T delta2;  dW = delta a_prev^T / N;  db = mean of delta."""
    count = labels.size
    delta2 = cache.A2 - one_hot(labels, cache.A2.shape[0])
    delta1 = (cache.Z1 > 0) * (params.W2.T @ delta2)
    return Params(
        W1=delta1 @ X.T / count,
        b1=delta1.sum(axis=1, keepdims=True) / count,
        W2=delta2 @ cache.A1.T / count,
        b2=delta2.sum(axis=1, keepdims=True) / count,
    )


def step(params: Params, grads: Params, lr: float) -> Params:
    """Gradient descent: theta <- theta - lr * dE/dtheta, for every parameter."""
    gradients = grads.as_dict()
    return Params(**{name: value - lr * gradients[name] for name, value in params.as_dict().items()})


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(axis=0) == labels).mean())


def predict(params: Params, X: np.ndarray) -> np.ndarray:
    return forward(params, X).A2


@dataclass
class Reading:
    """What the note prints every 10 iterations: accuracy on the training set before that iteration's update."""

    iteration: int
    train_acc: float
    train_loss: float


def gradient_descent(
    params: Params, X: np.ndarray, labels: np.ndarray, lr: float, iterations: int, every: int = 10, report=None
) -> tuple[Params, list[Reading]]:
    """The note's `gradient_descent`, full batch: forward, backward, step, `iterations` times. Every `every`
    iterations a reading is taken from that iteration's forward pass, before its update, as the note does;
    `report(reading, params)` gets it with the parameters it scored."""
    readings = []
    for iteration in range(iterations):
        cache = forward(params, X)
        if iteration % every == 0:
            reading = Reading(iteration, accuracy(cache.A2, labels), cross_entropy(cache.A2, labels))
            readings.append(reading)
            if report is not None:
                report(reading, params)
        params = step(params, backward(params, X, labels, cache), lr)
    return params, readings
