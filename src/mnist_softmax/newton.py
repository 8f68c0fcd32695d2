"""The exact optimum, fast: truncated Newton with exact Hessian-vector products, from an SGD start.

The objective is the `optimal` recipe's: mean cross-entropy + (l2 / 2) ||W||^2 (+ the smoothness penalty), on
centred inputs. Its Hessian applied to a direction (V, c) costs one pass over the data, as a gradient does:

    R = X~ V^T + c               (n, k)   the direction's change of the logits
    Q = P * R - P * rowsum(P * R)          the softmax's Jacobian applied to it
    H (V, c) = (Q^T X~ / n + l2 V + smooth L V,  colsum(Q) / n)

Each Newton step solves H p = -g by conjugate gradients, preconditioned by a Kronecker approximation of the
Hessian, E[S] (x) E_w[x x^T] (S = diag(p) - p p^T, each row's x x^T weighted by its trace of S), which takes care of
the pixels' very different scales. The passes run in float32 (the data's type), on every core only while the
machine is otherwise idle (two threads lose up to 10x on a busy one, see threads.py); the iterate, the directions
and all sums are float64, so the optimum is as exact as a float64 solver's while each pass reads half the bytes.
A short SGD run gives the start, a few hundred times closer to the optimum than zero.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from .model import smoothness
from .recipes import Recipe
from .threads import blas_threads, pass_threads

_PRECONDITIONER_ROWS = 4096
_MAX_CG = 100
FORCING = 0.1  # CG stops at this relative residual (or sqrt of the gradient's norm, when smaller)
_TRACE = None  # a list to append (objective, time.perf_counter()) to after each step, for benchmarks


class _Problem:
    """The regularised loss on centred features, evaluated a pass at a time in float32."""

    def __init__(self, X, y, k, l2, smooth, grid, mu):
        self.X, self.y, self.k, self.l2, self.smooth, self.grid = X, y, k, l2, smooth, grid
        self.n, self.d = X.shape
        self.mu = np.zeros(self.d, np.float32) if mu is None else mu
        self.rows = np.arange(self.n)
        self.P = None  # (n, k) float32 probabilities at the last point evaluated

    def logits(self, W, b):
        z = self.X @ W.astype(np.float32).T  # (n, k)
        z += (b - W @ self.mu).astype(np.float32)
        return z

    def value(self, W, b) -> float:
        z = self.logits(W, b)
        z -= z.max(axis=1, keepdims=True)
        loss = (np.log(np.exp(z).sum(axis=1)).sum(dtype=np.float64) - z[self.rows, self.y].sum(dtype=np.float64))
        return loss / self.n + self._penalty(W)[0]

    def gradient(self, W, b):
        """(loss, gW (k, d), gb (k,)) at (W, b), keeping the probabilities for Hessian products."""
        z = self.logits(W, b)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        total = p.sum(axis=1, keepdims=True)
        loss = (np.log(total).sum(dtype=np.float64) - z[self.rows, self.y].sum(dtype=np.float64)) / self.n
        p /= total
        self.P = p
        r = p.copy()
        r[self.rows, self.y] -= 1
        gW, gb = self._back(r)
        penalty, pW = self._penalty(W)
        return loss + penalty, gW + pW, gb

    def hessp(self, V, c):
        """The Hessian at the last gradient's point applied to (V (k, d), c (k,))."""
        r = self.logits(V, c)  # X~ V^T + c
        r *= self.P
        r -= self.P * r.sum(axis=1, keepdims=True)
        hW, hc = self._back(r)
        hW += self.l2 * V
        if self.smooth:
            hW += self.smooth * smoothness(V, self.grid)[1]
        return hW, hc

    def _back(self, r):
        """(r^T X~ / n, colsum(r) / n) in float64 from the float32 (n, k) r."""
        colsum = r.sum(axis=0, dtype=np.float64)
        gW = (r.T @ self.X).astype(np.float64)
        gW -= np.outer(colsum, self.mu)
        return gW / self.n, colsum / self.n

    def _penalty(self, W):
        value, grad = 0.5 * self.l2 * float(np.vdot(W, W)), self.l2 * W
        if self.smooth:
            s_value, s_grad = smoothness(W, self.grid)
            value, grad = value + self.smooth * s_value, grad + self.smooth * s_grad
        return value, grad


class _Preconditioner:
    """The inverse of E[S] (x) E_w[x x^T] + l2 (+ a floor), applied in the two factors' eigenbases."""

    def __init__(self, problem: _Problem):
        step = max(1, problem.n // _PRECONDITIONER_ROWS)
        Xs = (problem.X[::step] - problem.mu).astype(np.float64)  # (m, d)
        P = problem.P[::step].astype(np.float64)  # (m, k)
        S = (np.diag(P.mean(axis=0)) - P.T @ P / len(P))  # E[diag(p) - p p^T]  (k, k)
        weight = (P * (1 - P)).sum(axis=1) / max(np.trace(S), 1e-12)  # each row's trace of S, relative
        C = (Xs * weight[:, None]).T @ Xs / len(Xs)  # (d, d)
        self.a, self.Ua = np.linalg.eigh(S)
        self.c, self.Uc = np.linalg.eigh(C)
        self.a, self.c = np.maximum(self.a, 0), np.maximum(self.c, 0)
        top = self.a.max() * self.c.max()
        self.inverse_W = 1 / (np.outer(self.a, self.c) + problem.l2 + 1e-6 * top)  # (k, d)
        self.inverse_b = 1 / (self.a + 1e-3 * self.a.max())

    def __call__(self, gW, gb):
        W = self.Ua @ ((self.Ua.T @ gW @ self.Uc) * self.inverse_W) @ self.Uc.T
        b = self.Ua @ ((self.Ua.T @ gb) * self.inverse_b)
        return W, b


def _cg(problem, precondition, gW, gb, tolerance):
    """Approximately solve H p = -g by preconditioned conjugate gradients; returns (pW, pb, products)."""
    pW, pb = np.zeros_like(gW), np.zeros_like(gb)
    rW, rb = -gW, -gb
    zW, zb = precondition(rW, rb)
    dW, db = zW, zb
    rz = np.vdot(rW, zW) + np.vdot(rb, zb)
    target = tolerance * math.sqrt(np.vdot(gW, gW) + np.vdot(gb, gb))
    for i in range(1, _MAX_CG + 1):  # noqa: B007 (i is returned after the loop: the products used)
        hW, hb = problem.hessp(dW, db)
        curvature = np.vdot(dW, hW) + np.vdot(db, hb)
        if curvature <= 0:  # cannot happen for this convex objective, short of rounding
            break
        alpha = rz / curvature
        pW, pb = pW + alpha * dW, pb + alpha * db
        rW, rb = rW - alpha * hW, rb - alpha * hb
        if math.sqrt(np.vdot(rW, rW) + np.vdot(rb, rb)) < target:
            break
        zW, zb = precondition(rW, rb)
        rz, rz_old = np.vdot(rW, zW) + np.vdot(rb, zb), rz
        dW, db = zW + (rz / rz_old) * dW, zb + (rz / rz_old) * db
    return pW, pb, i


def newton_cg(X, y, k: int, recipe: Recipe, rng: np.random.Generator, mu, record, grid) -> tuple:
    """Truncated Newton to `recipe.tol` (largest gradient component), at most `recipe.steps` Newton steps."""
    from .solvers import sgd

    record(0, 0.0, np.zeros((k, X.shape[1]), np.float32), np.zeros(k, np.float32))
    start = dataclasses.replace(
        recipe, solver="sgd", learning_rate=2.0, momentum=0.9, batch_size=256, epochs=2, steps=None, min_steps=200,
        average=0.5, lr_cap=10.0, schedule="constant", precondition=0.3,
    )
    W32, b32, _, _ = sgd(X, y, k, start, rng, mu, lambda *args: None, grid)
    W, b = W32.astype(np.float64), b32.astype(np.float64)  # b of the centred parametrisation, as sgd returns it
    problem = _Problem(X, y, k, recipe.l2, recipe.smooth, grid, mu)
    if recipe.steps:
        max_steps = recipe.steps
    else:
        assert recipe.epochs is not None  # Recipe.check: a recipe has steps or epochs
        max_steps = max(1, math.ceil(recipe.epochs))
    steps = 0
    with blas_threads(pass_threads()):
        f, gW, gb = problem.gradient(W, b)
        precondition = _Preconditioner(problem)
        while steps < max_steps and (largest := max(np.abs(gW).max(), np.abs(gb).max())) >= recipe.tol:
            norm = math.sqrt(np.vdot(gW, gW) + np.vdot(gb, gb))
            # Solve each step only as well as it pays: loosely far from the optimum, and near it no more
            # accurately than the tolerance needs (a residual of 0.3 tol / largest shrinks the gradient enough).
            forcing = min(FORCING, max(math.sqrt(norm), 0.3 * recipe.tol / largest))
            pW, pb, _ = _cg(problem, precondition, gW, gb, forcing)
            slope = np.vdot(gW, pW) + np.vdot(gb, pb)
            alpha = 1.0
            while alpha > 1e-8:  # Armijo backtracking; the full Newton step is nearly always taken
                f_new = problem.value(W + alpha * pW, b + alpha * pb)
                if f_new <= f + 1e-4 * alpha * slope:
                    break
                alpha *= 0.5
            else:
                break  # no decrease left at float32 precision: as close as the passes can tell
            W, b = W + alpha * pW, b + alpha * pb
            steps += 1
            if _TRACE is not None:
                _TRACE.append((f_new, time.perf_counter()))
            f, gW, gb = problem.gradient(W, b)
            record(steps, float(steps), W.astype(np.float32), b.astype(np.float32))
    return W.astype(np.float32), b.astype(np.float32), steps, None
