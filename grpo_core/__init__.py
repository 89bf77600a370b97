"""grpo-core: GRPO training for LLM reasoners, with rewards, verifiers and
datasets contributed by plugins.

The public API is small and imports nothing heavy::

    from grpo_core import hookimpl, get_rewards, get_reward, get_verifier, get_dataset

Plugins import from here and from :mod:`grpo_core.kit` (the author kit), nothing else. The old paths
``grpo_core.verdict``, ``grpo_core.extract`` and ``grpo_core.datasets`` still work for one release, with a
DeprecationWarning (:mod:`grpo_core.kit._deprecated`).
"""

from __future__ import annotations

from grpo_core.kit import _deprecated
from grpo_core._version import __version__
from grpo_core.errors import ConfigError
from grpo_core.hookspecs import hookimpl
from grpo_core.kit import (
    DatasetAdapter,
    Verdict,
    VerdictStatus,
    Verifier,
    completion_text,
    extract_answer,
    format_xml,
    read_jsonl,
)
from grpo_core.plugins.lookup import (
    get_dataset,
    get_datasets,
    get_plugins,
    get_reward,
    get_rewards,
    get_verifier,
    get_verifiers,
)

__all__ = [
    "__version__",
    "hookimpl",
    "ConfigError",
    "Verdict",
    "VerdictStatus",
    "Verifier",
    "DatasetAdapter",
    "read_jsonl",
    "completion_text",
    "extract_answer",
    "format_xml",
    "get_rewards",
    "get_reward",
    "get_verifier",
    "get_verifiers",
    "get_dataset",
    "get_datasets",
    "get_plugins",
]

_deprecated.install()


def __getattr__(name: str):
    return _deprecated.attribute(name)
