"""Stored schemas and schema drift: what the run compares the live tables with before any read.

    store.py    the stored schema (its one reader and writer), built, loaded and written
    compare.py  classify the changes between a stored and the live schema (pure)
    check.py    the drift check of a run and of `schemas diff`; `schemas snapshot`

The policy (which action each class of change gets) is configuration: extractor/drift_policy.py.
"""
