"""Remote filesystems (object stores) behind fsspec URLs, for the store and deploy targets: a
wrong endpoint, refused credentials, a missing bucket or driver surface as a :class:`ConfigError`
naming the key to fix (exit 2), not as a botocore traceback."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from .errors import ConfigError

# object stores with buckets (a missing one is a configuration mistake) and their fsspec drivers
_DRIVER = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs",
           "abfs": "adlfs", "abfss": "adlfs"}
_UNREACHABLE = {"EndpointConnectionError", "ConnectionError", "ConnectTimeoutError",
                "ConnectionClosedError", "ClientConnectorError", "ServerDisconnectedError",
                "ReadTimeoutError"}
_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError"}


def open_url(url: str, storage_options: dict | None = None, *,
             key: str = "store.url") -> tuple[Any, str]:
    """Open the filesystem of an fsspec URL (``s3://bucket/prefix`` …) and check that its
    bucket exists; return ``(filesystem, path without the protocol)``. ``storage_options`` go to
    the filesystem (endpoint, credentials …). A missing driver or bucket, an unreachable endpoint
    or refused credentials raise a :class:`ConfigError` naming ``key``, the spec key holding
    ``url`` (and its ``storage_options`` sibling)."""
    import fsspec  # ~90 ms: `specloop --help` imports this module (via specloop)

    opts = dict(storage_options or {})
    with remote_errors(url, opts, key=key):
        fs, path = fsspec.core.url_to_fs(url, **opts)
        protocol = url.split("://", 1)[0]
        if protocol in _DRIVER:
            bucket = path.split("/", 1)[0]
            try:
                head = getattr(fs, "call_s3", None)  # s3fs: one HEAD, whatever the bucket holds
                if callable(head):
                    head("head_bucket", Bucket=bucket)
                else:
                    fs.ls(bucket, detail=False)
            except FileNotFoundError:
                raise ConfigError(
                    f"the bucket {bucket!r} does not exist", key=key, got=url,
                    expected="an existing bucket the credentials can write to",
                    fix=f"create the bucket (e.g. aws s3 mb {protocol}://{bucket}) or point "
                        f"{key} at one that exists (the s3 stack reads SPECLOOP_S3_BUCKET)",
                ) from None
    return fs, path


@contextmanager
def remote_errors(url: str, storage_options: dict | None = None, *,
                  key: str = "store.url") -> Iterator[None]:
    """Re-raise what a remote filesystem raises for a user's mistake (unreachable endpoint,
    refused credentials, missing driver) as a :class:`ConfigError` quoting ``url``, the endpoint
    from ``storage_options`` and the spec ``key``; other exceptions pass through unchanged."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as exc:
        err = _as_config_error(exc, url, dict(storage_options or {}), key)
        if err is None:
            raise
        raise err from None


def _as_config_error(exc: BaseException, url: str, opts: dict, key: str) -> ConfigError | None:
    opts_key = key.rsplit(".", 1)[0] + ".storage_options" if "." in key else "storage_options"
    protocol = url.split("://", 1)[0]
    names = {c.__name__ for c in type(exc).__mro__}
    endpoint = (opts.get("client_kwargs") or {}).get("endpoint_url") or opts.get("endpoint_url")
    detail = [("detail", f"{type(exc).__name__}: {exc}")]
    if isinstance(exc, ImportError) or (isinstance(exc, ValueError)
                                        and "Protocol not known" in str(exc)):
        pkg = _DRIVER.get(protocol, f"the fsspec driver for {protocol}://")
        return ConfigError(f"no filesystem driver for {protocol}:// is installed", key=key,
                           got=url, expected=f"{pkg} installed",
                           fix="pip install 'specloop[s3]'" if pkg == "s3fs"
                           else f"install {pkg}", extra=detail)
    if names & _UNREACHABLE or isinstance(exc, (ConnectionError, TimeoutError)):
        return ConfigError(f"cannot reach the object store for {url}",
                           key=f"{opts_key}.client_kwargs.endpoint_url", got=endpoint,
                           expected="the URL of a running S3-compatible endpoint",
                           fix="start the server or fix the endpoint (the s3 stack reads "
                               "SPECLOOP_S3_ENDPOINT)", extra=detail)
    if names & _CREDENTIALS or isinstance(exc, PermissionError):
        return ConfigError(f"the object store refused the credentials for {url}",
                           key=f"{opts_key}.key",
                           expected="an access key and secret allowed to read and write there",
                           fix="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
                               f"{opts_key}.key and .secret) to valid credentials", extra=detail)
    return None
