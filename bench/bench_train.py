"""Benchmark: mnist-softmax against its peers, on the same machine, arrays and run, peers interleaved.

Measured, each as medians of interleaved rounds (so a slow spell of a shared machine weighs on both sides):
- `SoftmaxClassifier().fit` (10 seeds: median time, mean test accuracy) against the same recipe written by hand in
  PyTorch CPU (bench/peers.py), scikit-learn's `LogisticRegression()` and the tutorial recipe;
- the same fit, and the whole `mnist-softmax train` process (with and without figures), with one CPU-bound process
  running beside it, against their idle times, idle and busy halves of each round alternating (the bench starts
  and stops the busy process itself);
- the `optimal` recipe against scikit-learn reaching the same objective (each in its own process: time, objective,
  peak memory);
- whole processes, warm cache: `mnist-softmax train` (with and without figures) against a scikit-learn script.
Prints the machine and its load before and after. Usage: python bench/bench_train.py [--data-dir DIR] [--quick]
[--only SECTION ...] (--quick: fewer rounds, no LogisticRegression peer, no optimal comparison; --only: some of
fits, contention, process, optimal.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"
sys.path.insert(0, str(Path(__file__).resolve().parent))

SKLEARN_SCRIPT = textwrap.dedent(
    """
    import gzip, sys, numpy as np
    from sklearn.linear_model import LogisticRegression
    d = sys.argv[1]
    def read(name, offset):
        with gzip.open(f"{d}/{name}.gz") as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)
    X = read("train-images-idx3-ubyte", 16).reshape(-1, 784) / 255.0
    y = read("train-labels-idx1-ubyte", 8)
    Xt = read("t10k-images-idx3-ubyte", 16).reshape(-1, 784) / 255.0
    yt = read("t10k-labels-idx1-ubyte", 8)
    clf = LogisticRegression().fit(X[:55000], y[:55000])
    print("test accuracy", (clf.predict(Xt) == yt).mean())
    """
)

# One process per solver for the exact optimum, so that each one's peak memory is its own. Both minimise
# mean cross-entropy + (l2 / 2) ||W||^2 on the 55,000 training images; the objective is evaluated in float64 by
# the same function for both.
OPTIMUM_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, warnings
    import numpy as np
    from mnist_softmax import load_dataset
    from mnist_softmax.model import loss_and_grad
    which, data_dir, l2 = sys.argv[1], sys.argv[2], 1e-4
    ds = load_dataset("mnist", data_dir)
    X8, y = ds.train_images[:55000].reshape(55000, -1), np.asarray(ds.train_labels[:55000])
    trace = []
    start = time.perf_counter()
    if which == "ours":
        from mnist_softmax import SoftmaxClassifier, newton
        newton._TRACE = trace  # (objective, time) after each Newton step
        X = X8.astype(np.float32) / np.float32(255)
        clf = SoftmaxClassifier("optimal", l2=l2, random_state=0).fit(X, y)
    else:
        from sklearn.linear_model import LogisticRegression
        X = X8 / 255.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegression(C=1 / (len(y) * l2), max_iter=int(sys.argv[3]), tol=float(sys.argv[4])).fit(X, y)
    seconds = time.perf_counter() - start
    # VmHWM: this process's own peak (ru_maxrss would carry the forking parent's over exec)
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
    f = loss_and_grad(clf.coef_.astype(np.float64), clf.intercept_.astype(np.float64), X8 / 255.0, y, l2)[0]
    print(json.dumps({"seconds": seconds, "objective": f, "peak_mb": peak,
                      "trace": [(value, t - start) for value, t in trace]}))
    """
)

PEAK_RSS = textwrap.dedent(
    """
    import resource, subprocess, sys
    subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    """
)

BUSY = "import time\nend = time.time() + 3600\nwhile time.time() < end:\n    pass\n"


SECTIONS = ["fits", "contention", "process", "optimal"]
CPU = {}  # name -> CPU seconds of this process, per call: steadier than wall time on a shared machine


def wall(fn, name=None):
    # BLAS threads spin for about 0.1 s after a multi-threaded product (a peer's accuracy, scikit-learn's score):
    # let them go to sleep first, so that no peer's time includes the previous one's spinning threads
    time.sleep(0.25)
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    if name:
        CPU.setdefault(name, []).append(time.process_time() - cpu)
    return time.perf_counter() - start, result


def load_report() -> str:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    top = subprocess.run(["top", "-bn1"], capture_output=True, text=True).stdout.splitlines()
    procs = [line for line in top[7:12] if line.strip()]
    return uptime + "\n    " + "\n    ".join(procs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--quick", action="store_true", help="fewer rounds; no LogisticRegression, no optimal")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS, metavar="SECTION",
                        help=f"run only these sections ({', '.join(SECTIONS)}); default: all")
    args = parser.parse_args()

    from mnist_softmax import SoftmaxClassifier, load_dataset
    from mnist_softmax.recipes import get_recipe

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy "
          f"{np.__version__}")
    print("load before:", load_report(), flush=True)
    ds = load_dataset("mnist", args.data_dir)
    X = ds.train_images.reshape(60000, -1).astype(np.float32) / np.float32(255)
    y = np.asarray(ds.train_labels)
    Xt = ds.test_images.reshape(10000, -1).astype(np.float32) / np.float32(255)
    yt = np.asarray(ds.test_labels)
    rows = {}

    def ours(seed):
        return SoftmaxClassifier(random_state=seed).fit(X, y)

    recipe = get_recipe("default")
    rate = ours(0).learning_rate_  # the capped rate, handed to the PyTorch peer for free

    def torch_peer(seed):
        from peers import torch_default_recipe

        W, b = torch_default_recipe(X, y, seed=seed, rate=rate, recipe=recipe)
        return float(np.mean((Xt @ W.T + b).argmax(1) == yt))

    # ---- in-process fits, interleaved rounds: ours, the PyTorch peer, (LogisticRegression), ours again
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
        print("  PyTorch peer skipped: torch is not installed (pip install torch)")
    our_times, our_acc, torch_times, torch_acc, lr_times, lr1_times, lr_acc = [], [], [], [], [], [], []
    rounds = 5 if "fits" in args.only else 0
    if rounds:
        print(f"\nin-process fits on the same float32 arrays (60,000 train, 10,000 test), {rounds} interleaved rounds:",
              flush=True)
    for r in range(rounds):
        for seed in (2 * r, 2 * r + 1):
            seconds, clf = wall(lambda seed=seed: ours(seed), "ours")
            our_times.append(seconds)
            our_acc.append(clf.score(Xt, yt))
        if have_torch:
            seconds, acc = wall(lambda r=r: torch_peer(r), "torch")
            torch_times.append(seconds)
            torch_acc.append(acc)
        if not args.quick and r < 2:
            from sklearn.linear_model import LogisticRegression
            from threadpoolctl import threadpool_limits

            for times, threads in ((lr_times, None), (lr1_times, 1)):  # its default threads, and one like ours
                with warnings.catch_warnings(), threadpool_limits(threads):
                    warnings.simplefilter("ignore")
                    seconds, clf = wall(lambda: LogisticRegression().fit(X, y))
                times.append(seconds)
            lr_acc.append(clf.score(Xt, yt))
    ours_median = float(np.median(our_times)) if our_times else float("nan")
    if our_times:
        print(f"  SoftmaxClassifier().fit                    {ours_median:7.3f} s  test {100 * np.mean(our_acc):.2f}% "
              f"(10 seeds: {100 * min(our_acc):.2f}-{100 * max(our_acc):.2f}%, time {min(our_times):.3f}-"
              f"{max(our_times):.3f} s)")
        rows["ours"] = {"seconds": ours_median, "test_accuracy": float(np.mean(our_acc)), "accuracies": our_acc}
    if have_torch and torch_times:
        t = float(np.median(torch_times))
        print(f"  same recipe by hand in PyTorch CPU         {t:7.3f} s  test {100 * np.mean(torch_acc):.2f}% "
              f"({len(torch_times)} seeds)   ours is {t / ours_median:.2f}x faster")
        o, p = float(np.median(CPU["ours"])), float(np.median(CPU["torch"]))
        print(f"    CPU time (median, with ours its helper threads): ours {o:.3f} s, PyTorch {p:.3f} s: {p / o:.2f}x")
        rows["cpu_seconds"] = {"ours": o, "torch_same_recipe": p}
        rows["torch_same_recipe"] = {"seconds": t, "test_accuracy": float(np.mean(torch_acc))}
    if lr_times:
        t = float(np.median(lr_times))
        t1 = float(np.median(lr1_times))
        print(f"  LogisticRegression()                       {t:7.3f} s  test {100 * np.mean(lr_acc):.2f}%"
              f"   ours is {t / ours_median:.0f}x faster")
        print(f"  LogisticRegression(), one BLAS thread      {t1:7.3f} s"
              f"                ours is {t1 / ours_median:.0f}x faster")
        rows["LogisticRegression()"] = {"seconds": t, "seconds_one_thread": t1, "test_accuracy": float(np.mean(lr_acc))}
    if "fits" in args.only:
        seconds, clf = wall(lambda: SoftmaxClassifier("tutorial", random_state=0).fit(X, y))
        print(f"  SoftmaxClassifier('tutorial').fit          {seconds:7.3f} s  test {100 * clf.score(Xt, yt):.2f}% "
              f"(curves at all 1,000 steps)", flush=True)
        rows["tutorial"] = {"seconds": seconds, "test_accuracy": clf.score(Xt, yt)}

    with tempfile.TemporaryDirectory() as tmp:
        # warm: the decoded-data cache and Python's bytecode cache filled by the warm-up run, as an installed
        # package has its bytecode (a PYTHONDONTWRITEBYTECODE in the environment would recompile every module)
        env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
               "MNIST_SOFTMAX_CACHE_DIR": os.path.join(tmp, "cache"), "PYTHONPYCACHEPREFIX": os.path.join(tmp, "pyc")}
        cli = [sys.executable, "-m", "mnist_softmax", "train", "--data-dir", args.data_dir, "-q"]
        subprocess.run([*cli, "--out", os.path.join(tmp, "warmup")], check=True, env=env, stdout=subprocess.DEVNULL)
        count = [0]

        def train_process(*extra):
            count[0] += 1
            out = os.path.join(tmp, f"run{count[0]}")
            return wall(lambda: subprocess.run([*cli, *extra, "--out", out], check=True, env=env,
                                               stdout=subprocess.DEVNULL))[0]

        # ---- contention: idle and busy rounds alternate
        if "contention" in args.only:
            rounds = 3 if args.quick else 5
            print(f"\nwith one CPU-bound process beside it (the bench starts it), against idle, {rounds} alternating "
                  "rounds:", flush=True)
            names = ("SoftmaxClassifier().fit", "mnist-softmax train --no-plots", "mnist-softmax train")
            idle, busy = ({name: [] for name in names} for _ in range(2))
            for r in range(rounds):
                for times in (idle, busy):
                    # its own session, as a program started elsewhere is: with the kernel's autogroup scheduling
                    # (sched_autogroup_enabled) a CPU hog in this session would share this session's slice
                    other = (subprocess.Popen([sys.executable, "-c", BUSY], start_new_session=True) if times is busy
                             else None)
                    try:
                        if other:
                            time.sleep(0.3)
                        times[names[0]].append(wall(lambda r=r: ours(100 + r))[0])
                        times[names[1]].append(train_process("--no-plots"))
                        times[names[2]].append(train_process())
                    finally:
                        if other:
                            other.kill()
                            other.wait()
            for name in names:
                i, b = float(np.median(idle[name])), float(np.median(busy[name]))
                print(f"  {name:<32} idle {i:6.3f} s   busy {b:6.3f} s   busy / idle {b / i:.2f}")
                rows[f"contention {name}"] = {"idle": i, "busy": b}

        # ---- whole processes, warm cache
        if "process" in args.only:
            print("\nwhole processes (warm cache; train on 55,000, as each does), interleaved:", flush=True)
            script = os.path.join(tmp, "sklearn_train.py")
            Path(script).write_text(SKLEARN_SCRIPT)
            cli_runs, fig_runs, sk_runs = [], [], []
            for r in range(3):
                cli_runs.append(train_process("--no-plots"))
                fig_runs.append(train_process())
                if r == 0 or not args.quick:
                    sk_runs.append(wall(lambda: subprocess.run([sys.executable, script, args.data_dir], check=True,
                                                               stdout=subprocess.DEVNULL,
                                                               stderr=subprocess.DEVNULL))[0])
            c, f, s = (float(np.median(v)) for v in (cli_runs, fig_runs, sk_runs))
            peak = subprocess.run([sys.executable, "-c", PEAK_RSS, *cli, "--out", os.path.join(tmp, "mem")],
                                  check=True, env=env, capture_output=True, text=True).stdout.split()[-1]
            tutorial = train_process("--recipe", "tutorial")
            print(f"  mnist-softmax train --no-plots             {c:7.3f} s")
            print(f"  mnist-softmax train (with its figures)     {f:7.3f} s   peak memory {int(peak) / 1024:.0f} MB")
            print(f"  scikit-learn LogisticRegression() script   {s:7.3f} s")
            print(f"  ratio, like for like (no figures)          {s / c:7.1f}x")
            print(f"  ratio, with our figures                    {s / f:7.1f}x")
            print(f"  mnist-softmax train --recipe tutorial      {tutorial:7.3f} s   (curves at all 1,000 steps)")
            rows["process"] = {"train_no_plots": c, "train_figures": f, "sklearn_script": s, "tutorial": tutorial,
                               "peak_memory_mb": int(peak) / 1024}

    # ---- the exact optimum, each solver in its own process
    if not args.quick and "optimal" in args.only:
        print("\nthe exact optimum (l2 1e-4, 55,000 images), each in its own process:", flush=True)
        results = {}
        for name, extra in (("ours", []), ("sklearn", ["1000", "1e-4"]), ("ours again", [])):
            which = "ours" if name.startswith("ours") else "sklearn"
            out = subprocess.run([sys.executable, "-c", OPTIMUM_SCRIPT, which, args.data_dir, *extra],
                                 check=True, capture_output=True, text=True).stdout
            results[name] = json.loads(out.splitlines()[-1])
        sk = results["sklearn"]
        # our time to reach scikit-learn's final objective: the first Newton step at or below it (the objective
        # the passes compute is float32-accurate, so "at" allows 1e-9 relative)
        reach = [min([t for value, t in r["trace"] if value <= sk["objective"] * (1 + 1e-9)], default=r["seconds"])
                 for r in (results["ours"], results["ours again"])]
        o = {k: float(np.median([results["ours"][k], results["ours again"][k]]))
             for k in ("seconds", "objective", "peak_mb")}
        o["reach_seconds"] = float(np.median(reach))
        print(f"  LogisticRegression(max_iter=1000)          {sk['seconds']:7.2f} s   "
              f"objective {sk['objective']:.9f}   peak {sk['peak_mb']:.0f} MB")
        print(f"  optimal recipe (Newton-CG), to grad 1e-6   {o['seconds']:7.2f} s   objective {o['objective']:.9f}   "
              f"peak {o['peak_mb']:.0f} MB")
        print(f"  optimal recipe, to scikit-learn's value    {o['reach_seconds']:7.2f} s   "
              f"ours is {sk['seconds'] / o['reach_seconds']:.1f}x faster to the same objective "
              f"({sk['seconds'] / o['seconds']:.1f}x to its own, lower, "
              f"optimum {o['objective'] - sk['objective']:+.1e})")
        rows["optimal"] = {"ours": o, "sklearn": {k: sk[k] for k in ("seconds", "objective", "peak_mb")}}
    print("\nload after:", load_report())
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=float))


if __name__ == "__main__":
    main()
