"""The shipped meta-dataset, installed as the package data ``autometa._metadata``.

This file only makes the directory a regular package, which setuptools' editable installs
need to map it into ``autometa``; the data are the CSV and JSON files beside it (written by
experiments/build_metadb.py, read by autometa.metadb.load_shipped).
"""
