"""Parsing SHOW GRANTS: warn when the user can write, never show a password hash."""

from __future__ import annotations

from extractor.source.grants import parse_grants


def test_read_only_user_has_no_write_grants_and_hash_is_masked() -> None:
    grants = parse_grants(
        [
            "GRANT USAGE ON *.* TO `ro`@`%` IDENTIFIED BY PASSWORD '*180A3783E7B77A23A12D05'",
            "GRANT SELECT, SHOW VIEW ON `radar`.* TO `ro`@`%`",
        ],
        "radar",
    )
    assert grants.writable == []
    assert "*180A3783" not in " ".join(grants.lines)


def test_write_grants_on_the_database_or_globally_are_found() -> None:
    grants = parse_grants(
        [
            "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
            "GRANT INSERT, UPDATE ON `radar`.`store` TO `app`@`%`",
            "GRANT DELETE ON `other`.* TO `app`@`%`",
            "GRANT SELECT, INSERT ON `rad%`.* TO `app`@`%`",
        ],
        "radar",
    )
    assert grants.writable == [
        "ALL PRIVILEGES ON *.*",
        "GRANT OPTION ON *.*",
        "INSERT ON `radar`.`store`",
        "UPDATE ON `radar`.`store`",
        "INSERT ON `rad%`.*",
    ]


def test_mysql_8s_two_lines_of_an_admin_name_the_grant_option_once() -> None:
    grants = parse_grants(
        [
            "GRANT SELECT, INSERT, SHOW VIEW ON *.* TO `radar`@`%` WITH GRANT OPTION",
            "GRANT BACKUP_ADMIN,XA_RECOVER_ADMIN ON *.* TO `radar`@`%` WITH GRANT OPTION",
        ],
        "radar",
    )
    assert grants.writable == ["INSERT ON *.*", "GRANT OPTION ON *.*"]
