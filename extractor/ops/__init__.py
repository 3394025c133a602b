"""Operations beside the run: checks before it, and what reads its results after it.

preflight.py  `check`: can tonight's run work?
merge.py      one report per date from every shard's run report (the merged report)
validate.py   a date's partitions against their manifests, stored schemas and the source
validation.py the result of `validate`: the model, its JSON, its lines
notify.py     the Slack message
glue.py       the Glue boundary: client, error translation, the crawler
catalog.py    `catalog sync`: the date's partitions onto their Glue tables, no crawler
hive_types.py Parquet (Arrow) types -> Hive types, for Glue columns
after_run.py  the crawler and the catalog sync after a success, then Slack; the same for a date
"""
