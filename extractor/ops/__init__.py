"""Operations beside the run: checks before it, and what reads its results after it.

    preflight.py  `check`: can tonight's run work?
    merge.py      one report per date from every shard's run report (the merged report)
    validate.py   a date's partitions against their manifests, stored schemas and the source
    validation.py the result of `validate`: the model, its JSON, its lines
    notify.py     the Slack message
    glue.py       the Glue crawler
    after_run.py  the crawler after a success, then Slack; the same for a date
"""
