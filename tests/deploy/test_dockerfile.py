"""The Dockerfile's promises that need no Docker engine (its steps run in test_package.py)."""

from __future__ import annotations

from tests.deploy.dockerfile import ROOT, build_sources, exec_form, stages


def test_two_stages_on_slim_python_311() -> None:
    build, runtime = stages()
    assert build.base == runtime.base == "python:3.11-slim"
    assert any("pip wheel" in run and "--no-deps" in run for run in build.all("RUN"))
    # The runtime stage installs the wheel from the build stage and nothing from the context
    # but the stored schemas.
    copies = runtime.all("COPY")
    assert copies[0].startswith("--from=build /wheels ")
    assert [c for c in copies if not c.startswith("--from")] == [
        "schemas /opt/radar-extract/schemas"
    ]


def test_runtime_is_non_root_with_the_cli_as_entrypoint() -> None:
    runtime = stages()[1]
    (user,) = runtime.all("USER")
    assert not user.startswith(("root", "0"))
    assert exec_form(runtime.all("ENTRYPOINT")[0]) == ["radar-extract"]
    assert exec_form(runtime.all("CMD")[0]) == ["--help"]
    assert not runtime.all("HEALTHCHECK")  # a batch job: its exit code is its health


def test_schemas_dir_points_at_the_copied_schemas() -> None:
    env = " ".join(stages()[1].all("ENV"))
    assert "RADAR_SCHEMAS_DIR=/opt/radar-extract/schemas" in env


def test_no_secret_in_the_image() -> None:
    text = " ".join(
        f"{name} {rest}" for stage in stages() for name, rest in stage.instructions
    ).upper()
    assert "ENV" in text
    for word in ("PASSWORD", "SECRET", "WEBHOOK", "AWS_", "TOKEN", "MYSQL_URL"):
        assert word not in text
    # Build arguments stay in the image's history: none at all.
    assert not [name for stage in stages() for name, _ in stage.instructions if name == "ARG"]


def test_dockerignore_lets_the_copied_sources_through() -> None:
    sources = [*build_sources(stages()[0]), "schemas"]
    assert sources == ["pyproject.toml", "README.md", "extractor", "schemas"]
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    ]
    assert sorted(allowed) == sorted(sources)
