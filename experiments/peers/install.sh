#!/usr/bin/env bash
# Create one virtual environment per peer under experiments/peers/<name>/venv
# (git-ignored) and log each install to experiments/peers/<name>/install.log.
# Usage: bash experiments/peers/install.sh [sklearn flaml autogluon autosklearn]
set -u
here="$(cd "$(dirname "$0")" && pwd)"
peers="${*:-sklearn flaml autogluon autosklearn}"
for name in $peers; do
  dir="$here/$name"
  mkdir -p "$dir"
  log="$dir/install.log"
  : > "$log"
  if [ ! -x "$dir/venv/bin/python" ]; then
    python3 -m venv "$dir/venv" >>"$log" 2>&1
  fi
  pip="$dir/venv/bin/python -m pip install --no-input"
  $pip -U pip wheel setuptools >>"$log" 2>&1
  case "$name" in
    sklearn)     $pip "scikit-learn==1.9.1" pandas numpy >>"$log" 2>&1 ;;
    flaml)       $pip "flaml[automl]" pandas >>"$log" 2>&1 ;;
    autogluon)   $pip "torch==2.13.0" >>"$log" 2>&1 && \
                 $pip "autogluon.tabular[all]" "torch==2.13.0" >>"$log" 2>&1 ;;
    autosklearn) $pip "auto-sklearn" >>"$log" 2>&1 ;;
  esac
  echo "exit=$? $name" >>"$log"
  echo "$name: $(tail -n 1 "$log")"
done
