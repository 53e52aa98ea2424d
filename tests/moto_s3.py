"""Fixtures: a real S3-compatible server (moto's server mode) on 127.0.0.1 for the session.

Nothing here talks to the internet: every client gets the local endpoint, and the AWS
credentials are dummies the local server accepts.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

DUMMY = {"AWS_ACCESS_KEY_ID": "specloop-test", "AWS_SECRET_ACCESS_KEY": "specloop-test",
         "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """The endpoint URL of a moto S3 server started once per pytest run."""
    pytest.importorskip("s3fs")
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    old = {k: os.environ.get(k) for k in DUMMY}
    os.environ.update(DUMMY)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def s3_options(s3_endpoint) -> dict:
    """fsspec storage options that reach the local server."""
    return {"client_kwargs": {"endpoint_url": s3_endpoint}, "key": DUMMY["AWS_ACCESS_KEY_ID"],
            "secret": DUMMY["AWS_SECRET_ACCESS_KEY"]}


@pytest.fixture
def s3(s3_options):
    """An s3fs filesystem on the local server (listings never cached)."""
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, **s3_options)


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, empty bucket (created without a region, as the local server expects)."""
    name = f"specloop-{uuid.uuid4().hex[:10]}"
    s3.mkdir(name)
    return name


@pytest.fixture
def s3_env(s3_endpoint, bucket, monkeypatch) -> dict:
    """Environment for ``stack=s3``: the endpoint, the fresh bucket and dummy credentials."""
    env = {**DUMMY, "SPECLOOP_S3_ENDPOINT": s3_endpoint, "SPECLOOP_S3_BUCKET": bucket}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
