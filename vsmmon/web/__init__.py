"""The HTTP service: health endpoints and the REST API (`create_app`)."""

from vsmmon.web.app import create_app

__all__ = ["create_app"]
