"""Fail fast when the Hugging Face Hub cannot be reached.

Without this, transformers and datasets retry for 20-50 s before failing with a long traceback.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from src.config import UserError

PROBE_TIMEOUT_S = 3.0


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def offline_mode() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


def require_hub(what: str, local_hint: str) -> None:
    """Raise a one-line UserError unless the Hub answers within PROBE_TIMEOUT_S seconds."""
    endpoint = hub_endpoint()
    if offline_mode():
        raise UserError(f"{what} is not in the local cache and offline mode is on (HF_HUB_OFFLINE=1): {local_hint}")
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise UserError(f"cannot reach {endpoint} to download {what} ({reason}): {local_hint}") from None
