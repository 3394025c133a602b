"""Where the data goes: Parquet files, the destination (local or S3), the publish protocol.

    destination.py  the destination root through fsspec, and the key layout
    parquet.py      Parquet with the documented settings; row groups by bytes; files by size
    multipart.py    S3: each file uploaded to its final key while written, invisible until completed
    publish.py      verify, journal, complete or move into place, drop stale keys, manifest last;
                    recovery
    lock.py         one writer per table and date: a leased lock (S3 conditional writes)
"""
