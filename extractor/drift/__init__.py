"""Stored schemas and schema drift (issue #4).

    store.py    build, serialise (deterministically), load and write the stored schemas
    compare.py  classify the changes between a stored and the live schema (pure)
    policy.py   the action of each class of change, per table (pure)
    check.py    the drift check of a run and of `schemas diff`; `schemas snapshot`
"""
