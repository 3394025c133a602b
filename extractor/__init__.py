"""radar-extract: every table of a MySQL database to SNAPPY Parquet partitions, exact and
all-or-nothing. The CLI (`extractor.cli`) is a thin layer over these functions."""

__version__ = "0.1.0"

__all__ = ["__version__"]
