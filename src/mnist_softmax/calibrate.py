"""Calibrated probabilities: temperature scaling, and the expected calibration error that measures it.

A softmax regression trained with L2 is usually over- or under-confident by a roughly constant factor in its
logits. Temperature scaling (Guo et al., 2017) divides every logit by one number T, fitted to minimise the
cross-entropy on held-out data (the validation split): the predicted class never changes, only how sure the model
says it is. The expected calibration error (ECE) is the gap between confidence and accuracy, averaged over 15
equal-width confidence bins weighted by how many predictions fall in each.
"""

from __future__ import annotations

import numpy as np

from .model import log_softmax, softmax

ECE_BINS = 15
_LOG_T_RANGE = (-3.0, 3.0)  # T between 0.05 and 20: beyond that the model, not its temperature, is the problem


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean cross-entropy of logits (n, k) / temperature against integer class indices (n,)."""
    logp = log_softmax(np.asarray(logits, np.float64) / temperature)
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the cross-entropy of softmax(logits / T) on (logits (n, k), labels (n,)).

    The loss is convex in beta = 1/T, with derivative mean(E_p[z] - z_y) and second derivative mean(Var_p[z]), so
    a safeguarded Newton iteration on beta finds the optimum in a few steps (numpy only: no scipy import on the
    training path); T is kept in [0.05, 20]. 1.0 when there is nothing to fit on (no rows).
    """
    z = np.asarray(logits, np.float64)
    labels = np.asarray(labels).astype(np.intp)
    if not len(labels):
        return 1.0
    true = z[np.arange(len(labels)), labels]
    lo, hi = np.exp(-_LOG_T_RANGE[1]), np.exp(-_LOG_T_RANGE[0])

    def loss(beta: float) -> float:
        return float(-(log_softmax(beta * z)[np.arange(len(labels)), labels]).mean())

    beta, current = 1.0, loss(1.0)
    for _ in range(100):
        p = softmax(beta * z)
        mean_z = (p * z).sum(axis=1)
        gradient = float((mean_z - true).mean())
        curvature = float(((p * z * z).sum(axis=1) - mean_z**2).mean())
        if curvature <= 1e-12:
            break
        step = gradient / curvature
        while True:  # halve a Newton step that would not lower the loss
            candidate = float(np.clip(beta - step, lo, hi))
            value = loss(candidate)
            if value <= current or abs(step) < 1e-12:
                break
            step /= 2
        if abs(candidate - beta) <= 1e-10 * beta:
            beta = candidate
            break
        beta, current = candidate, value
    return float(1 / beta)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of probabilities (n, k) against class indices (n,): sum over confidence bins of
    (share of predictions in the bin) * |accuracy in the bin - mean confidence in the bin|."""
    probabilities = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels)
    if not len(labels):
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    # bins (0, 1/B], (1/B, 2/B], ...: a confidence of exactly 1 falls in the last one
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    gap = np.abs(np.bincount(which, correct, minlength=bins) - np.bincount(which, confidence, minlength=bins))
    return float(gap.sum() / len(labels))


def calibration_summary(logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict:
    """ECE and cross-entropy before (T = 1) and after dividing the logits by `temperature`."""
    return {
        "ece_before": round(expected_calibration_error(softmax(logits), labels), 6),
        "ece_after": round(expected_calibration_error(softmax(logits / temperature), labels), 6),
        "nll_before": round(nll(logits, labels), 6),
        "nll_after": round(nll(logits, labels, temperature), 6),
    }
