"""Where the data goes: Parquet files, the destination (local or S3), the publish protocol.

keys.py         every key under the destination root: data, manifests, journal, locks...
destination.py  the destination root through fsspec: the file operations, errors translated
formats.py      what every file we write shares: deterministic JSON, `format`, one-line errors
manifest.py     a partition's manifest (and the drift records it shares with the run report)
                and a compatible write's `compat` entry
journal.py      the journal entry of a publish under way
parquet.py      Parquet with the documented settings; row groups by bytes; files by size
multipart.py    S3: each file uploaded to its final key while written, invisible until completed
publish.py      verify, journal, complete or move into place, drop stale keys, manifest last;
                recovery
lock.py         one writer per table and date: a leased lock (S3 conditional writes), its
                body with a `format`
"""
