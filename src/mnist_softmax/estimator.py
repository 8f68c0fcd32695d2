"""SoftmaxClassifier: softmax regression as a scikit-learn estimator (Pipeline, GridSearchCV, check_estimator).

This module imports scikit-learn; `import mnist_softmax` loads it only when SoftmaxClassifier is first used.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .errors import UsageError
from .model import Preprocessing, SoftmaxModel, binary_margin, linear_scores, log_softmax, softmax
from .recipes import get_recipe
from .solvers import solve


def _is_dask(X) -> bool:
    """Whether X is a dask collection, told without importing dask (only those who made one have it loaded)."""
    return type(X).__module__.split(".")[0] == "dask"


def _blockwise(clf, method: str, X):
    from .distributed import predict_blockwise

    return predict_blockwise(clf, method, X)


class SoftmaxClassifier(ClassifierMixin, BaseEstimator):
    """Multinomial logistic (softmax) regression trained by a named recipe.

    Parameters left at None take the recipe's value: `recipe="default"` (momentum SGD, batch 256, 2.25 epochs,
    weights averaged over the last half, l2=1e-5, smooth=1e-4) reaches the linear model's best MNIST accuracy in well
    under a second; `"tutorial"` is TensorFlow's mnist_softmax.py (plain SGD, rate 0.5, batch 100, 1000 steps);
    `"optimal"` is Newton's method to tight tolerance on mean cross-entropy + (l2 / 2) ||W||^2, which equals
    scikit-learn's LogisticRegression(C=1 / (n_samples * l2)).
    `average` is the last fraction of SGD steps over which the weights are averaged (0: keep the last step's).
    `smooth` adds (smooth / 2) sum_c ||grad W_c||^2, the squared differences of neighbouring weights of each class's
    image (28x28 for 784 features: a square when the number of features is one, else a row), for readable maps.
    Inputs are used as given: scale pixels to [0, 1] first (X / 255).
    """

    def __init__(
        self,
        recipe="default",
        *,
        learning_rate=None,
        momentum=None,
        batch_size=None,
        epochs=None,
        steps=None,
        l2=None,
        smooth=None,
        average=None,
        tol=None,
        random_state=None,
    ):
        self.recipe = recipe
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.epochs = epochs
        self.steps = steps
        self.l2 = l2
        self.smooth = smooth
        self.average = average
        self.tol = tol
        self.random_state = random_state

    def _recipe(self):
        return get_recipe(self.recipe).with_overrides(
            learning_rate=self.learning_rate,
            momentum=self.momentum,
            batch_size=self.batch_size,
            epochs=self.epochs,
            steps=self.steps,
            l2=self.l2,
            smooth=self.smooth,
            average=self.average,
            tol=self.tol,
        )

    def fit(self, X, y, eval_set=None):
        """Fit to X (n, d) and y (n,); `eval_set=(X_val, y_val)` adds validation curves to `history_`.

        `history_` maps "step", "epoch", "train_loss", "train_accuracy" (and "validation_*") to arrays, one
        entry per record point of the recipe. Dask arrays are fitted on the cluster dask is using (distributed.py):
        the exact optimum by distributed L-BFGS for full-batch recipes, SGD by model averaging for the others.
        """
        self._stream = None  # a fit starts afresh; partial_fit continues from it
        if _is_dask(X) or _is_dask(y):
            if eval_set is not None:
                raise ValueError("eval_set is not supported with dask arrays; score the fitted model instead")
            from .distributed import fit_dask

            return fit_dask(self, X, y)
        recipe = self._recipe()
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"this solver needs samples of at least 2 classes in the data, but the data contains only one "
                f"class: {self.classes_[0]!r}"
            )
        monitor = {}
        if eval_set is not None:
            X_val, y_val = eval_set
            X_val = validate_data(self, X_val, reset=False, dtype=[np.float32, np.float64])
            monitor["validation"] = (X_val, encoder.transform(y_val))
        rng = np.random.default_rng(self._seed())
        solution = solve(X, encoder.transform(y), len(self.classes_), recipe, rng, monitor=monitor)
        self.coef_ = solution.coef
        self.intercept_ = solution.intercept
        self.history_ = solution.history
        self.n_iter_ = solution.n_steps
        self.n_epochs_ = solution.n_epochs
        self.learning_rate_ = solution.learning_rate
        return self

    def partial_fit(self, X, y, classes=None):
        """One pass of the recipe's SGD over the block (X, y), continuing where the previous call stopped.

        True multinomial updates: the weights, momentum, averaged iterates and learning rate are carried across
        calls, so a stream of blocks trains as one long run (dask_ml.wrappers.Incremental feeds it this way).
        `classes` (all the labels the stream will hold) is required on the first call, as in scikit-learn; after
        `fit`, partial_fit continues from the fitted weights. Needs an SGD recipe ("default" or "tutorial").
        """
        from .stream import StreamState, check_streamable

        recipe = self._recipe()
        check_streamable(recipe)
        first = getattr(self, "coef_", None) is None
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            if first:
                self.classes_ = classes
            elif not np.array_equal(classes, self.classes_):
                raise ValueError(f"classes={classes.tolist()!r} differs from the earlier {self.classes_.tolist()!r}")
        elif first:
            raise ValueError("classes must be passed on the first call to partial_fit")
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], reset=first)
        check_classification_targets(y)
        if len(self.classes_) < 2:
            raise ValueError(f"classes must hold at least 2 labels, got {self.classes_.tolist()!r}")
        index = np.searchsorted(self.classes_, y).clip(0, len(self.classes_) - 1)
        unknown = self.classes_[index] != y
        if unknown.any():
            raise ValueError(f"y holds labels not in classes: {np.unique(y[unknown]).tolist()[:10]!r} "
                             f"(classes: {self.classes_.tolist()!r})")
        X = X.astype(np.float32, copy=False)
        state = getattr(self, "_stream", None)
        if first or state is None:
            start = None if first else (self.coef_, self.intercept_)  # after fit: continue from its weights
            state = StreamState.start(X, len(self.classes_), recipe, np.random.default_rng(self._seed()),
                                      *(start or ()))
            self._stream = state
            self.history_ = {"step": np.zeros(0, int), "batch_loss": np.zeros(0)}  # one entry per call
        loss = state.update(X, index, recipe)
        self.coef_, self.intercept_ = state.coef_intercept()
        self.n_iter_ = state.steps
        self.learning_rate_ = state.rate
        self.history_ = {"step": np.append(self.history_["step"], state.steps),
                         "batch_loss": np.append(self.history_["batch_loss"], loss)}
        return self

    def _seed(self):
        if isinstance(self.random_state, np.random.RandomState):
            return self.random_state.randint(2**31)
        return self.random_state

    def _logits(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        return linear_scores(X, self.coef_, self.intercept_)  # (n, k)

    def decision_function(self, X):
        """Class scores (logits), shape (n, k); for two classes, as scikit-learn does, the margin (n,)."""
        if _is_dask(X):
            return _blockwise(self, "decision_function", X)
        return binary_margin(self._logits(X))

    def predict_proba(self, X):
        """Class probabilities, shape (n, k)."""
        if _is_dask(X):
            return _blockwise(self, "predict_proba", X)
        return softmax(self._logits(X))

    def predict_log_proba(self, X):
        if _is_dask(X):
            return _blockwise(self, "predict_log_proba", X)
        return log_softmax(self._logits(X))

    def predict(self, X):
        """The most probable class label of each row of X (a dask array: predicted block by block, lazily)."""
        if _is_dask(X):
            return _blockwise(self, "predict", X)
        scores = self._logits(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def evidence(self, X):
        """Per-class, per-feature evidence coef_[c] * x, shape (n, k, d); summed over features, plus the
        intercept, it equals the logits exactly."""
        from .explain import evidence_from_features

        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        return evidence_from_features(X.astype(np.float32, copy=False), self.coef_)

    def to_model(self, *, scale: float = 1.0, image_shape: tuple[int, int] | None = None, **metadata) -> SoftmaxModel:
        """The fitted weights as a SoftmaxModel, ready for `save_model`. `scale` is what turns the raw inputs the
        model will be given into the features fit saw (1/255 when fit had pixels / 255: the model then predicts
        from raw pixels), `image_shape` their image shape (h, w), which the image commands need."""
        check_is_fitted(self)
        metadata = {"hyperparameters": self._recipe().to_json(), **metadata}
        shape = tuple(int(v) for v in image_shape) if image_shape is not None else None
        if shape is not None and math.prod(shape) != self.coef_.shape[1]:
            raise UsageError(f"image_shape {shape} does not hold the model's {self.coef_.shape[1]} features")
        preprocessing = Preprocessing(scale=float(scale), image_shape=shape)
        return SoftmaxModel(self.coef_, self.intercept_, self.classes_, preprocessing, metadata=metadata)

    def to_onnx(self, **options):
        """The fitted model as an onnx.ModelProto (see export.py); its input "pixels" is float32, as given to fit."""
        from .export import to_onnx

        return to_onnx(self.to_model(), **{"input_type": "float32", **options})

    def _repr_mimebundle_(self, **kwargs):
        """Jupyter: once fitted, the fit and the weight maps at a glance (display.py) instead of the diagram."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if getattr(self, "coef_", None) is not None:
            from .display import estimator_html, estimator_png

            bundle["text/html"] = estimator_html(self)
            image = estimator_png(self)
            if image is not None:
                bundle["image/png"] = image
        return bundle

    def _repr_html_(self):
        return self._repr_mimebundle_().get("text/html")

    def _repr_png_(self):
        return self._repr_mimebundle_().get("image/png")
