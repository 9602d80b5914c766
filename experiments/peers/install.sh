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
  py=python3
  # auto-sklearn 0.15 needs scikit-learn 0.24, which does not build on Python 3.11; its
  # pyrfr needs swig (apt-get install swig).
  if [ "$name" = autosklearn ]; then
    py="${AUTOSKLEARN_PYTHON:-}"
    for c in python3.9 python3.10 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9*/bin/python; do
      if [ -z "$py" ] && "$c" -c "import sys" >/dev/null 2>&1; then py="$c"; fi
    done
    if [ -z "$py" ]; then echo "no Python 3.9 or 3.10 found (set AUTOSKLEARN_PYTHON)" >>"$log"; fi
  fi
  if [ ! -x "$dir/venv/bin/python" ]; then
    "$py" -m venv "$dir/venv" >>"$log" 2>&1
  fi
  pip="$dir/venv/bin/python -m pip install --no-input"
  $pip -U pip wheel setuptools >>"$log" 2>&1
  case "$name" in
    sklearn)     $pip "scikit-learn==1.9.1" pandas numpy >>"$log" 2>&1 ;;
    flaml)       $pip "flaml[automl]" pandas >>"$log" 2>&1 ;;
    autogluon)   $pip "torch==2.13.0" >>"$log" 2>&1 && \
                 $pip "autogluon.tabular[all]" "torch==2.13.0" >>"$log" 2>&1 ;;
    autosklearn) $pip "setuptools<70" >>"$log" 2>&1 && \
                 $pip "auto-sklearn==0.15.0" "numpy<2" "pandas<2.1" "scipy<1.12" >>"$log" 2>&1 ;;
  esac
  echo "exit=$? $name" >>"$log"
  echo "$name: $(tail -n 1 "$log")"
done
