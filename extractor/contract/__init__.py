"""The type contract: each MySQL column's SQL projection, Arrow type and vectorized conversion.

types.py   the declarative rules, MySQL column -> (projection, Arrow type, conversion)
casts.py   the conversion of the reader's batches to the contract, in Arrow compute
"""
