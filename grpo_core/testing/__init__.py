"""Testing helpers for plugin authors and for grpo-core itself.

* :mod:`~grpo_core.testing.conformance`: ``check_reward``, ``check_verifier``, ``check_dataset``;
* :mod:`~grpo_core.testing.pytest_plugin`: the ``grpo_register`` and ``grpo_edge_completions`` fixtures;
* :mod:`~grpo_core.testing.modelgen`: tiny random models for offline tests.
"""

from grpo_core.testing.conformance import *  # noqa: F403  (the checks: exactly conformance.__all__)
from grpo_core.testing.conformance import __all__  # noqa: F401
