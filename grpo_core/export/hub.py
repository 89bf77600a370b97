"""Publishing an export: the upload to the Hugging Face Hub, with the token from the environment only."""

from __future__ import annotations

import os
from pathlib import Path

from grpo_core.errors import ConfigError


def hub_token() -> str | None:
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")


def push_to_hub(folder: Path, repo: str, *, private: bool = True) -> str:
    """Upload ``folder`` to ``repo`` with the token from the environment; the token is never printed or written."""
    token = hub_token()
    if not token:
        raise ConfigError("--push-to-hub needs a Hugging Face token in the environment: set HF_TOKEN (it is never printed or written).")
    from huggingface_hub import HfApi  # deferred: only for --push-to-hub

    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id=repo, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="model", commit_message="grpo-core export")
    except Exception as exc:  # noqa: BLE001 - never let the token reach the terminal
        msg = f"{type(exc).__name__}: {exc}".replace(token, "***")
        raise ConfigError(f"push to {repo!r} failed: {msg}") from None
    return str(url)
