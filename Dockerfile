# radar-extract as a batch container: `docker build -t radar-extract .`
# Configuration comes only from RADAR_* environment variables and an optional mounted TOML file
# (`--config /etc/radar-extract/config.toml`); nothing secret is baked into the image.
# No HEALTHCHECK: a batch job is healthy when it exits 0; the orchestrator reads the exit code.

# Stage 1: build the wheel (setuptools comes from the build isolation, not the final image).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY extractor ./extractor
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: only the wheel and its runtime dependencies (no dev tools, no tests, no compiler).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RADAR_SCHEMAS_DIR=/opt/radar-extract/schemas
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/*.whl && rm -rf /tmp/wheels \
    && useradd --system --uid 10001 --create-home --home-dir /home/radar radar \
    && mkdir -p /etc/radar-extract
# The stored schemas (drift checks, validate) are part of the release, read-only.
COPY schemas /opt/radar-extract/schemas
USER 10001:10001
WORKDIR /home/radar
ENTRYPOINT ["radar-extract"]
CMD ["--help"]
