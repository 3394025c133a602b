"""The AWS Glue boundary (botocore, already installed with s3fs): the client, the translation
of its errors into ours, and the crawler start.

The endpoint, region and credentials come from the standard chain only, as for S3:
`AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_GLUE` point it elsewhere (moto in the tests).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from extractor.errors import GlueError, GlueUnavailable, Step

logger = logging.getLogger(__name__)

Started = Literal["started", "already running"]

# Error codes that mean "these credentials may not do this": the same class as a refused login.
_REFUSED = {
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "MissingAuthenticationTokenException",
}
_WHITESPACE = re.compile(r"\s+")


def start_crawler(name: str) -> Started:
    """Start crawler `name`. A crawl already under way is enough: it returns "already running".

    Raises GlueError (exit 1: missing crawler, bad request) or GlueUnavailable (exit 3:
    unreachable endpoint, no region, missing or refused credentials), each with one line.
    """
    import botocore.exceptions as bx

    try:
        client().start_crawler(Name=name)
    except bx.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "")) or "ClientError"
        detail = _one_line(str(error.get("Message", "")))
        if code == "CrawlerRunningException":
            logger.warning(
                "glue crawler %r is already running: this run's data is in the "
                "next crawl only if that crawl has not listed it yet",
                name,
            )
            return "already running"
        if code == "EntityNotFoundException":
            raise GlueError(
                f"glue crawler {name!r} does not exist ({code})", step=Step.GLUE
            ) from exc
        if code in _REFUSED:
            raise GlueUnavailable(
                f"glue refused to start crawler {name!r}: {code}: {detail}", step=Step.GLUE
            ) from exc
        raise GlueError(
            f"glue crawler {name!r} was not started: {code}: {detail}", step=Step.GLUE
        ) from exc
    except (bx.NoRegionError, bx.NoCredentialsError, bx.PartialCredentialsError) as exc:
        raise GlueUnavailable(
            f"glue crawler {name!r} was not started: {_one_line(str(exc))}", step=Step.GLUE
        ) from exc
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
        raise GlueUnavailable(
            f"glue is unreachable, crawler {name!r} was not started: {_one_line(str(exc))}",
            step=Step.GLUE,
        ) from exc
    except bx.BotoCoreError as exc:
        raise GlueError(
            f"glue crawler {name!r} was not started: {type(exc).__name__}: {_one_line(str(exc))}",
            step=Step.GLUE,
        ) from exc
    logger.info(
        "started glue crawler %r",
        name,
        extra={"fields": {"event": "glue_crawler", "crawler": name}},
    )
    return "started"


@contextmanager
def translated(what: str, *, table: str | None = None) -> Iterator[None]:
    """Turn botocore's errors while doing `what` ("create partition ... of db.table") into
    GlueUnavailable (exit 3: unreachable, no region, missing or refused credentials) or
    GlueError (exit 1: a missing entity, a bad request), each one line with `from exc`."""
    import botocore.exceptions as bx

    try:
        yield
    except bx.ClientError as exc:
        code = error_code(exc)
        detail = _one_line(str(exc.response.get("Error", {}).get("Message", "")))
        cls = GlueUnavailable if code in _REFUSED else GlueError
        verb = "refused to" if code in _REFUSED else "could not"
        raise cls(f"glue {verb} {what}: {code}: {detail}", table=table, step=Step.GLUE) from exc
    except (bx.NoRegionError, bx.NoCredentialsError, bx.PartialCredentialsError) as exc:
        raise GlueUnavailable(
            f"glue could not {what}: {_one_line(str(exc))}", table=table, step=Step.GLUE
        ) from exc
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
        raise GlueUnavailable(
            f"glue is unreachable, could not {what}: {_one_line(str(exc))}",
            table=table,
            step=Step.GLUE,
        ) from exc
    except bx.BotoCoreError as exc:
        raise GlueError(
            f"glue could not {what}: {type(exc).__name__}: {_one_line(str(exc))}",
            table=table,
            step=Step.GLUE,
        ) from exc


def error_code(exc: Any) -> str:
    """The error code of a botocore ClientError ("EntityNotFoundException", ...)."""
    return str(exc.response.get("Error", {}).get("Code", "")) or "ClientError"


def client() -> Any:
    """A Glue client from the standard chain (endpoint, region, credentials)."""
    import botocore.config
    import botocore.session

    # One quick retry for a throttle or a 5xx; a lasting fault is the scheduler's to retry.
    config = botocore.config.Config(
        connect_timeout=5, read_timeout=20, retries={"total_max_attempts": 2, "mode": "standard"}
    )
    return botocore.session.get_session().create_client("glue", config=config)


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()[:300]
