"""Peers for the benchmarks: the default recipe written by hand in PyTorch, as a careful PyTorch user would.

Same steps as solvers.sgd: centred inputs, zero start, per-pixel step sizes from the pixels' variances, rate capped
by the data's top eigenvalue (the same rate is passed in), a new random order each epoch, momentum, l2 and
smoothness gradients, iterate averaging over the last half, snapshots at the same record points and a training
curve on the same spread sample. One thread, like ours.
"""

from __future__ import annotations

import math

import numpy as np


def torch_default_recipe(X, y, *, seed, rate, recipe, shuffle_copy=False, curve_rows=5000, shape=(28, 28)):
    """Returns (coef (k, d), intercept (k,)) as numpy arrays, for the plain model x W^T + b."""
    import torch

    torch.set_num_threads(1)
    epochs, batch_size, momentum = recipe.epochs, recipe.batch_size, recipe.momentum
    l2, smooth = recipe.l2, recipe.smooth
    average, record_points, min_steps = recipe.average, recipe.record, recipe.min_steps
    g = torch.Generator().manual_seed(seed)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(np.asarray(y).astype(np.int64))
    n, d = Xt.shape
    k = int(yt.max()) + 1
    sample = Xt[:: max(1, n // 4096)][:4096]
    mu = sample.double().mean(0).float()
    D = None
    if recipe.precondition:
        var = ((sample - mu) ** 2).mean(0)
        D = 1 / (var + recipe.precondition * var.mean())
        D /= D.min()
    batches = math.ceil(n / batch_size)
    total = max(round(epochs * batches), min_steps)
    every = max(1, round(total / record_points))
    W = torch.zeros(k, d)
    b = torch.zeros(k)
    vW, vb = torch.zeros_like(W), torch.zeros_like(b)
    mean_W, mean_b = W.clone(), b.clone()
    average_after = total - round(average * total)
    snapshots = [(W.clone(), b.clone())]
    t, averaged = 0, 0
    h, w = shape
    with torch.no_grad():
        while t < total:
            order = torch.randperm(n, generator=g)
            if shuffle_copy:  # one gather per epoch, then each batch is a contiguous view
                Xe, ye = Xt.index_select(0, order), yt.index_select(0, order)
            for start in range(0, n, batch_size):
                if shuffle_copy:
                    xb, yb = Xe[start : start + batch_size], ye[start : start + batch_size]
                else:
                    rows = order[start : start + batch_size].sort().values
                    xb = Xt.index_select(0, rows)
                    yb = yt.index_select(0, rows)
                z = xb @ W.T + (b - W @ mu)
                p = torch.softmax(z, dim=1)
                p[torch.arange(len(yb)), yb] -= 1
                p /= len(yb)
                gb = p.sum(0)
                gW = p.T @ xb - torch.outer(gb, mu) + l2 * W
                if smooth:
                    V = W.view(k, h, w)
                    G = torch.zeros_like(V)
                    dx = V[:, :, 1:] - V[:, :, :-1]
                    dy = V[:, 1:, :] - V[:, :-1, :]
                    G[:, :, 1:] += dx
                    G[:, :, :-1] -= dx
                    G[:, 1:, :] += dy
                    G[:, :-1, :] -= dy
                    gW += smooth * G.view(k, d)
                if D is not None:
                    gW *= D
                vW.mul_(momentum).sub_(rate * gW)
                vb.mul_(momentum).sub_(rate * gb)
                W += vW
                b += vb
                t += 1
                model = (W, b)
                if t > average_after:
                    averaged += 1
                    mean_W += (W - mean_W) / averaged
                    mean_b += (b - mean_b) / averaged
                    model = (mean_W, mean_b)
                if t % every == 0 or t == total:
                    snapshots.append((model[0].clone(), model[1].clone()))
                if t == total:
                    break
        # the training curve on the same spread sample, all snapshots in one product
        sample = Xt[:: max(1, n // curve_rows)][:curve_rows]
        ys = yt[:: max(1, n // curve_rows)][:curve_rows]
        Ws = torch.stack([s[0] for s in snapshots])  # (s, k, d)
        bs = torch.stack([s[1] - s[0] @ mu for s in snapshots])  # (s, k)
        z = torch.einsum("nd,skd->snk", sample, Ws) + bs[:, None, :]
        torch.nn.functional.cross_entropy(z.reshape(-1, k), ys.repeat(len(snapshots)), reduction="none")
        W_final, b_final = snapshots[-1]
    return W_final.numpy(), (b_final - W_final @ mu).numpy()
