"""MySQL: connections, discovery from information_schema, the bulk reader, TLS.

batching.py    rows per batch for about batch_bytes; whether to gate the read
connection.py  pymysql for control queries, connectorx's URL; driver errors translated
discovery.py   base tables, estimates, columns and keys from information_schema
grants.py      the user's grants, and whether it can write
mysql_auth.py  what a client proves in MySQL's connection phase (the proxy's check)
ranges.py      a table's primary-key ranges, for reading it on several streams
reader.py      one table (or one key range of it) as Arrow batches from one streaming SELECT
tls.py         TLS settings per ssl_mode
tls_proxy.py   the local proxy that gives connectorx a TLS leg (or a gated relay)
"""
