"""The scikit-learn estimator, checked by scikit-learn's own estimator checks and used as practitioners do."""

import pytest

pytest.importorskip("sklearn", reason="the estimator needs scikit-learn (pip install 'steepest[sklearn]')")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from steepest.sklearn import MLPClassifier  # noqa: E402

#: checks that cannot pass, with the reason (scikit-learn marks them xfail)
EXPECTED_FAILED = {}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED


# Small and quick, but trained enough to pass the checks' accuracy bars (> 0.83 on blobs).
CHECKED = MLPClassifier(hidden=(16,), epochs=40, batch_size=32, lr=0.1)
# Other paths through fit: full-batch Adam in float64 with two tanh layers; early stopping on a split.
FULL_BATCH = MLPClassifier(hidden=(8, 8), activation="tanh", dtype="float64", optimizer="adam", lr=0.02,
                           batch_size="full", epochs=150)
EARLY_STOP = MLPClassifier(hidden=(16,), epochs=60, batch_size=16, lr=0.1, val_split=0.2, patience=20)


@parametrize_with_checks([CHECKED, FULL_BATCH, EARLY_STOP], expected_failed_checks=expected_failed_checks)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- used as practitioners use it

import inspect  # noqa: E402
import pickle  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from clirun import steepest  # noqa: E402
from steepest.errors import ConfigError, ModelFileError  # noqa: E402
from steepest.sklearn import load  # noqa: E402


def small(**kw):
    return MLPClassifier(**{"hidden": (32,), "epochs": 10, "batch_size": 64, "input_scale": 1 / 16, **kw})


def test_parameters_are_the_options_of_steepest_train():
    """Every option of `steepest train` that is about the model or its training is a parameter, with
    the same default; the rest are about files, data and the screen."""
    from steepest.commands._trainconfig import OPTIONS

    not_model = {"dataset", "labels", "data_dir", "download", "fallback", "out", "checkpoint_every",
                 "checkpoint_seconds", "recipe"}
    params = MLPClassifier().get_params()
    for opt in OPTIONS:
        if opt.name in not_model:
            assert opt.name not in params
            continue
        assert opt.name in params, f"steepest train --{opt.name} has no estimator parameter"
        default = params[opt.name]
        assert (list(default) if isinstance(default, tuple) else default) == opt.default, opt.name
    assert set(params) - {o.name for o in OPTIONS} == {"input_scale"}  # train takes it from the dataset


def test_same_theta_as_steepest_train_bit_for_bit(digits, tmp_path):
    r = steepest("train", "--dataset", "digits", "--hidden", "24", "--optimizer", "adam", "--lr", "0.01",
                 "--batch-size", "50", "--epochs", "3", "--seed", "4", "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    from steepest.io import load_model

    _, theta, _ = load_model(tmp_path / "run" / "model.safetensors")
    est = MLPClassifier(hidden=(24,), optimizer="adam", lr=0.01, batch_size=50, epochs=3, seed=4,
                        input_scale=digits.input_scale).fit(digits.X_train, digits.y_train)
    assert np.array_equal(est.theta_, theta)
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3 and est.t_ == 3 * len(digits.y_train)
    loaded = load(tmp_path / "run" / "model.safetensors")  # a `steepest train` file is an estimator too
    assert np.array_equal(loaded.predict(digits.X_test), est.predict(digits.X_test))
    assert loaded.get_params()["optimizer"] == "adam" and loaded.get_params()["hidden"] == (24,)


def test_string_labels_and_fitted_attributes(digits):
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    est = small()
    assert not hasattr(est, "classes_")
    est.fit(digits.X_train, names[digits.y_train])
    assert est.classes_.tolist() == sorted(names.tolist())
    pred = est.predict(digits.X_test)
    assert set(pred) <= set(names) and np.mean(pred == names[digits.y_test]) > 0.85
    P = est.predict_proba(digits.X_test)
    assert P.shape == (len(digits.y_test), 10) and np.allclose(P.sum(axis=1), 1, atol=1e-6)
    assert np.array_equal(est.classes_[P.argmax(axis=1)], pred)
    assert np.allclose(est.predict_log_proba(digits.X_test), np.log(P.astype(np.float64)), atol=1e-4)
    assert est.n_features_in_ == 64 and not hasattr(est, "feature_names_in_")
    assert [W.shape for W in est.coefs_] == [(64, 32), (32, 10)] and [b.shape for b in est.intercepts_] == [(32,), (10,)]
    assert est.history_.epochs[-1]["epoch"] == 10 and est.stop_reason_ == "max_epochs"


def test_feature_names_from_a_data_frame():
    pytest.importorskip("pandas", reason="feature names come from a pandas DataFrame")
    from sklearn.utils.estimator_checks import check_dataframe_column_names_consistency

    check_dataframe_column_names_consistency("MLPClassifier", CHECKED)


def test_partial_fit_continues_where_fit_would(digits):
    """k calls of partial_fit on the whole set = fit with epochs=k: same shuffles, same optimizer state."""
    est = small(epochs=3).fit(digits.X_train, digits.y_train)
    inc = small()
    with pytest.raises(ConfigError, match="classes="):
        inc.partial_fit(digits.X_train, digits.y_train)
    for _ in range(3):
        inc.partial_fit(digits.X_train, digits.y_train, classes=np.arange(10))
    assert np.array_equal(inc.theta_, est.theta_) and inc.n_iter_ == 3
    with pytest.raises(ValueError, match="not one of the classes"):
        small().partial_fit(digits.X_train[:5], np.array([0, 1, 2, 3, 11]), classes=np.arange(10))


def test_pipeline_grid_search_cross_val_score_and_clone(digits):
    X, y = digits.X_train, digits.y_train
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", small(input_scale=1.0))])
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85
    grid = GridSearchCV(pipe, {"mlp__hidden": [(8,), (32,)], "mlp__optimizer": ["momentum", "adam"]}, cv=3).fit(X, y)
    assert grid.best_params_["mlp__hidden"] in [(8,), (32,)] and grid.score(digits.X_test, digits.y_test) > 0.85
    est = small(lr=0.1)
    copy = clone(est)
    assert copy is not est and copy.get_params() == est.get_params() and not hasattr(copy, "theta_")
    assert set(inspect.signature(MLPClassifier).parameters) == set(est.get_params())


def test_save_and_load_without_pickle(digits, tmp_path):
    names = np.array(list("abcdefghij"), dtype=object)
    est = small(hidden=(16, 8), activation=("tanh", "relu"), dtype="float64").fit(digits.X_train, names[digits.y_train])
    path = est.save(tmp_path / "est.safetensors")
    head = path.read_bytes()[:8]
    assert int.from_bytes(head, "little") < path.stat().st_size  # a safetensors header, not a pickle stream
    back = load(path)
    assert back.get_params() == est.get_params()
    assert back.classes_.tolist() == est.classes_.tolist() and back.classes_.dtype == est.classes_.dtype
    assert np.array_equal(back.predict_proba(digits.X_test), est.predict_proba(digits.X_test))
    assert np.array_equal(back.predict(digits.X_test), est.predict(digits.X_test))
    assert back.loss_curve_ == est.loss_curve_ and back.n_iter_ == est.n_iter_
    back.partial_fit(digits.X_train, names[digits.y_train])  # a loaded estimator trains on
    assert back.n_iter_ == 1
    again = pickle.loads(pickle.dumps(est))  # picklable too, as scikit-learn expects
    assert np.array_equal(again.predict(digits.X_test), est.predict(digits.X_test))
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    with pytest.raises(ModelFileError):
        load(tmp_path / "junk.safetensors")


@pytest.mark.parametrize("params, match", [
    ({"activation": "swish"}, "activation must be one of relu"),
    ({"optimizer": "lbfgs"}, "optimizer must be one of gd"),
    ({"hidden": (16, 0)}, "hidden must be positive"),
    ({"batch_size": 0}, "batch_size must be a positive integer or 'full'"),
    ({"optimizer": "gd", "momentum": 0.9}, "momentum does not apply to optimizer gd"),
    ({"patience": 3}, "patience needs a validation set"),
    ({"lr": -1.0}, "lr|learning rate"),
])
def test_bad_parameters_say_what_to_do(digits, params, match):
    with pytest.raises(ValueError, match=match):
        small(**params).fit(digits.X_train[:100], digits.y_train[:100])


def test_early_stopping_on_a_validation_split(digits):
    est = small(epochs=200, val_split=0.2, patience=3, lr=0.2).fit(digits.X_train, digits.y_train)
    assert est.stop_reason_ == "patience" and est.n_iter_ < 200
    assert len(est.validation_scores_) == est.n_iter_ and max(est.validation_scores_) > 0.9


def test_side_by_side_benchmark_configures_both_alike():
    """benchmarks/sklearn_side_by_side.py: both estimators run the configuration it claims they share."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "sklearn_side_by_side.py"
    spec = importlib.util.spec_from_file_location("_bench_side_by_side", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from sklearn.datasets import make_moons

    X, y = make_moons(400, noise=0.25, random_state=0)
    X = X.astype(np.float32)
    ests = bench.estimators(((8,), 3, 32, 0.05))
    ours, theirs = ests["steepest"], ests["scikit-learn"]
    assert ours.hidden == theirs.hidden_layer_sizes and ours.epochs == theirs.max_iter
    assert ours.batch_size == theirs.batch_size and ours.lr == theirs.learning_rate_init
    row = {"name": "moons", "n_train": 300, "n_test": 100, "hidden": (8,), "epochs": 3, "batch": 32}
    for lib, est in ests.items():
        row[lib] = bench.measure(est, X[:300], y[:300], X[300:], y[300:], repeats=1)
    assert ours.n_iter_ == 3 and theirs.n_iter_ == 3  # every epoch ran in both (no early stop)
    assert "| moons | 300 / 100 | 8 | 3 | 32 |" in bench.table([row])



def _outcome(estimator, X):
    """What ``estimator.predict(X)`` did under scikit-learn's validation, its class name replaced by "EST":
    ``("error", type, first line)`` or ``("ok", [UserWarning messages])``."""
    import warnings

    name = type(estimator).__name__
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator.predict(X)
        except Exception as e:  # noqa: BLE001 - the outcome is what is compared
            return "error", type(e), str(e).splitlines()[0].replace(name, "EST")
    return "ok", [str(w.message).replace(name, "EST") for w in caught if issubclass(w.category, UserWarning)]


def test_feature_names_survive_save_and_load(digits, tmp_path):
    """Fitted on a DataFrame, saved, loaded: ``feature_names_in_`` is back, a frame with the same columns
    predicts as before without a warning, and other columns or none are met as scikit-learn's own
    ``LogisticRegression`` meets them (same exception and message, same warnings)."""
    pd = pytest.importorskip("pandas", reason="feature names come from a pandas DataFrame")
    from sklearn.linear_model import LogisticRegression

    columns = [f"px{r}{c}" for r in range(8) for c in range(8)]
    train, test = (pd.DataFrame(X, columns=columns) for X in (digits.X_train, digits.X_test))
    est = small().fit(train, digits.y_train)
    assert est.feature_names_in_.tolist() == columns
    back = load(est.save(tmp_path / "named.safetensors"))
    assert isinstance(back.feature_names_in_, np.ndarray) and back.feature_names_in_.dtype == object
    assert back.feature_names_in_.tolist() == columns and back.n_features_in_ == 64
    assert _outcome(back, test) == ("ok", [])
    assert np.array_equal(back.predict(test), est.predict(test))
    assert np.array_equal(back.predict_proba(test), est.predict_proba(test))

    theirs = LogisticRegression(max_iter=1000).fit(train / 16, digits.y_train)
    renamed, reordered, unnamed = test.rename(columns={"px00": "pixel0"}), test[columns[::-1]], test.to_numpy()
    for X in (renamed, reordered, unnamed):
        assert _outcome(back, X) == _outcome(theirs, X)
    assert _outcome(back, renamed)[:2] == _outcome(back, reordered)[:2] == ("error", ValueError)
    assert "does not have valid feature names" in _outcome(back, unnamed)[1][0]


def test_a_model_trained_with_shares_of_the_run_refits_to_the_same_theta(digits, tmp_path):
    """`steepest train --warmup-steps 3% --eval-every 25%` (a recipe's form) loads as an estimator whose
    fit resolves the shares as the command did: the same θ bit for bit; a bad share is one ConfigError."""
    r = steepest("train", "--dataset", "digits", "--hidden", "16", "--schedule", "cosine", "--warmup-steps", "3%",
                 "--eval-every", "25%", "--batch-size", "64", "--epochs", "4", "--threads", "1",
                 "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    from steepest.errors import ConfigError
    from steepest.io import load_model

    _, theta, _ = load_model(tmp_path / "run" / "model.safetensors")
    est = load(tmp_path / "run" / "model.safetensors")
    assert est.get_params()["warmup_steps"] == "3%" and est.get_params()["eval_every"] == "25%"
    est.set_params(threads=1).fit(digits.X_train, digits.y_train)
    assert np.array_equal(est.theta_, theta) and len(est.history_.epochs) == 4
    with pytest.raises(ConfigError, match="share of the run"):
        MLPClassifier(schedule="cosine", warmup_steps="3 %%", epochs=2).fit(digits.X_train, digits.y_train)


def test_a_checkpoint_loads_with_its_own_options_and_network(digits, tmp_path):
    """``load`` of a checkpoint (its options are under "config", not "training") gives the estimator the
    run's options and the network's shape: a refit builds the same 64-8-4-10 network, not the defaults."""
    from sklearn.base import clone

    r = steepest("train", "--dataset", "digits", "--hidden", "8", "4", "--activation", "tanh", "--lr", "0.2",
                 "--batch-size", "32", "--epochs", "1", "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    for path in ("checkpoints/checkpoint.safetensors", "model.safetensors"):
        est = load(tmp_path / "run" / path)
        p = est.get_params()
        assert (p["hidden"], p["activation"], p["lr"], p["batch_size"]) == ((8, 4), "tanh", 0.2, 32), path
        refit = clone(est).set_params(epochs=1).fit(digits.X_train, digits.y_train)
        assert refit.net_.sizes == est.net_.sizes == (64, 8, 4, 10), path
    r = steepest("train", "--dataset", "digits", "--hidden", "--epochs", "1", "--out", tmp_path / "none", "--quiet")
    assert r.returncode == 0, r.stderr  # softmax regression: no hidden layer, no activation to take
    est = load(tmp_path / "none" / "model.safetensors")
    assert est.get_params()["hidden"] == () and clone(est).fit(digits.X_train, digits.y_train).net_.sizes == (64, 10)


def test_load_gives_back_the_parameters_that_were_saved(digits, tmp_path):
    """MLPClassifier.save → load: get_params() equal, whatever form the regularisation was given in."""
    est = MLPClassifier(hidden=16, activation=("relu",), dropout=[0.0, 0.0], label_smoothing=0.0, max_norm=3.0,
                        epochs=1).fit(digits.X_train, digits.y_train)
    est.save(tmp_path / "m.safetensors")
    assert load(tmp_path / "m.safetensors").get_params() == est.get_params()


# ---------------------------------------------------------------- every parameter checked, every input held

def test_every_parameter_is_checked_as_steepest_train_checks_its_option():
    """Each parameter has a kind and a bound, the same as the `steepest train` option of its name (so a
    value the command line refuses is refused here), and the hidden-layer limits are the command's."""
    from steepest.commands import _limits
    from steepest.commands._trainconfig import BY_NAME
    from steepest.sklearn import MAX_LAYERS, MAX_WIDTH, PARAM_KINDS

    assert set(PARAM_KINDS) == set(MLPClassifier().get_params()) == set(WRONG) | set(WITH)  # all tried below
    assert {n: (BY_NAME[n].kind, BY_NAME[n].hi) for n in PARAM_KINDS if n != "input_scale"} == \
        {n: k for n, k in PARAM_KINDS.items() if n != "input_scale"}
    assert (MAX_LAYERS, MAX_WIDTH) == (_limits.MAX_LAYERS, _limits.MAX_WIDTH)


#: a wrong type and a wrong value for every parameter (those the adversarial pass found first)
WRONG = {
    "hidden": [None, 1.5, (16.0,), (True,), (10**9,)], "activation": [None, 3, ()], "init": [None, 3],
    "pieces": [1, 65, 2.5, "3", True, 3],  # 3: a right number, but no maxout layer
    "bias": [None], "dtype": [np.float32, "float16"], "input_scale": ["a", None, True, 0],
    "l2": ["a", None, True, -1.0], "dropout": [0.5, "0.5", [0.2, "a"], True, [0.2, 1.0], [0.5]],
    "max_norm": ["a", True, 0.0], "label_smoothing": ["a", 1.0], "standardize": ["yes", 1],
    "optimizer": [None, "lbfgs"], "lr": ["a", True, 0, float("nan")], "momentum": ["a", True, -0.1, 1.0],
    "clip_norm": ["a", 0.0], "schedule": [None], "batch_size": [None, 1.5, True, float("nan")],
    "epochs": ["a", True, 1.5, 0], "max_steps": ["a", 0], "time_budget": ["a", 0.0], "eps": ["a", -1.0],
    "val_split": ["a", 0.0, 1.0, 0.05], "eval_every": [True, 1.5, "0%", "200%", 0], "kernels": [None, "cuda"],
    "seed": [np.random.RandomState(0), np.random.default_rng(0), -1, 1.5, "a", True, 2**63],
    "threads": [0, -1, 1.5, "a", True, 10**6],
}
WITH = {"beta1": ({"optimizer": "adam"}, ["a", True, -0.5, 1.0]), "beta2": ({"optimizer": "adam"}, ["a", True, 1.5]),
        "weight_decay": ({}, ["a", -1.0, 1e4]), "patience": ({"val_split": 0.2}, ["a", 0, 1.5]),
        "step_size": ({"schedule": "step", "gamma": 0.5}, ["a", 0, 2.5]),
        "gamma": ({"schedule": "step", "step_size": 10}, ["a", True, 2.0]),
        "warmup_steps": ({"schedule": "warmup"}, ["a", -1, 0.05, "100%"]),
        "lr_min": ({"schedule": "cosine"}, ["a", -1.0]), "pct_start": ({"schedule": "onecycle"}, ["a", 1.0])}
CASES = [(name, {name: v}) for name, values in WRONG.items() for v in values] + \
    [(name, {**extra, name: v}) for name, (extra, values) in WITH.items() for v in values]


def _case_id(name, value):
    plain = value is None or isinstance(value, (bool, int, float, str, list, tuple, type))
    return f"{name}={value!r}"[:40] if plain else f"{name}={type(value).__name__}"


@pytest.mark.parametrize("name, params", CASES, ids=[_case_id(n, p[n]) for n, p in CASES])
def test_a_wrong_parameter_is_a_config_error_that_names_it(digits, name, params):
    """Whatever the parameter and however it is wrong, fit refuses it with a ConfigError (a ValueError)
    that names the parameter and says what to give — never NumPy's TypeError, never silently."""
    with pytest.raises(ConfigError) as e:
        small(**{"epochs": 1, **params}).fit(digits.X_train[:100], digits.y_train[:100])
    assert isinstance(e.value, ValueError) and name in str(e.value) and "; " in str(e.value), str(e.value)


def test_a_single_dropout_rate_is_refused_as_steepest_train_refuses_it(digits, tmp_path):
    """`--dropout 0.5` for a network with hidden layers is refused by the command line; so is dropout=0.5,
    with the list to give instead."""
    with pytest.raises(ConfigError, match=r"one for the input and one per hidden layer.*dropout=\[0.2, 0.5, 0.5\]"):
        small(hidden=(16, 8), dropout=0.5).fit(digits.X_train[:100], digits.y_train[:100])
    r = steepest("train", "--dataset", "digits", "--hidden", "16", "8", "--dropout", "0.5", "--epochs", "1",
                 "--out", tmp_path / "run", "--quiet")
    assert r.returncode != 0 and "--dropout" in r.stderr and "give 3" in r.stderr


def test_seed_none_draws_a_fresh_seed_and_keeps_it(digits, tmp_path):
    """seed=None is scikit-learn's random_state=None: each fit draws its own seed, kept as seed_, in the
    saved file and in load(); the run it drew is repeated, bit for bit, by seed=seed_."""
    a = small(seed=None, epochs=2).fit(digits.X_train, digits.y_train)
    b = clone(a).fit(digits.X_train, digits.y_train)
    assert clone(a).get_params()["seed"] is None and a.seed_ != b.seed_ and not np.array_equal(a.theta_, b.theta_)
    again = small(seed=a.seed_, epochs=2).fit(digits.X_train, digits.y_train)
    assert np.array_equal(again.theta_, a.theta_)
    back = load(a.save(tmp_path / "fresh.safetensors"))
    assert back.get_params() == a.get_params() and back.seed_ == a.seed_
    assert np.array_equal(back.predict_proba(digits.X_test), a.predict_proba(digits.X_test))
    assert small(epochs=1).fit(digits.X_train[:100], digits.y_train[:100]).seed_ == 0


def test_values_too_large_for_the_networks_precision_are_refused(digits):
    """Finite float64 inputs that float32 cannot hold (1e300), or whose products overflow inside the
    network (3e38 on 64 inputs), are refused as NaN and inf are — a ValueError that says why — by every
    method, instead of NaN outputs and NumPy overflow warnings."""
    import warnings

    est = small(epochs=1, input_scale=1.0).fit(digits.X_train / 16, digits.y_train)
    huge = np.full((2, 64), 1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning on the way to the error
        for method in (est.predict, est.predict_proba, est.predict_log_proba, lambda X: est.score(X, [0, 1])):
            with pytest.raises(ValueError, match="too large for the network's float32 precision"):
                method(huge)
        with pytest.raises(ValueError, match="row 0 of X .* overflows the network's float32 precision"):
            est.predict_proba(np.full((2, 64), 3e38))
        X = digits.X_train.astype(np.float64)
        X[5, 3] = 1e300
        with pytest.raises(ValueError, match=r"1e\+300 \(row 5, column 3\): too large"):
            small(epochs=1).fit(X, digits.y_train)
        with pytest.raises(ValueError, match="too large"):
            small().partial_fit(X, digits.y_train, classes=np.arange(10))
        with pytest.raises(ValueError, match="too large"):
            est.partial_fit(X, digits.y_train)
    wide = small(dtype="float64", epochs=1).fit(digits.X_train, digits.y_train)  # the bound is the network's own
    assert np.isfinite(wide.predict_proba(np.full((2, 64), 1e39))).all()
