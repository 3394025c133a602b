"""One run: discover, plan, extract every table (workers, retries, timeouts), report.

catalog.py   what discovery found: tables, columns, keys, the TLS decision
runner.py    a run from discovery to its report
outcome.py   how a run ended, as one value: report, stop before tables, late failure
shards.py    the tables in N groups balanced by bytes; the plan saved for a date (its JSON)
workers.py   the pool: tables in spawned processes, results as they finish
retry.py     per-table attempts with backoff; the timeout hook
watchdog.py  the process that kills a table's read on the server when it runs too long
breaker.py   the circuit breaker that stops a run when many tables fail alike
pipeline.py  one table end to end: read -> convert -> Parquet -> stage -> verify -> publish
report.py    per-table results and the run report: the model and its JSON
summary.py   the human summary of a report (headline, NULLed and converted values,
             failures, drift)
"""
