"""Plugins: loading them (entry points, plugin files, built-ins), where each came from, and the registries.

* :mod:`~grpo_core.plugins.manager`: the pluggy manager and the one loop that calls a hook's implementations;
* :mod:`~grpo_core.plugins.loading`: entry points, ``GRPO_CORE_LOAD_PLUGINS`` and the built-ins;
* :mod:`~grpo_core.plugins.files`: single-file plugins;
* :mod:`~grpo_core.plugins.provenance`: which distribution or file each plugin came from;
* :mod:`~grpo_core.plugins.registry`: one registry of named entries (collisions, qualified names);
* :mod:`~grpo_core.plugins.registries`: what every plugin registers, collected; summaries; the test reset;
* :mod:`~grpo_core.plugins.lookup`: ``get_reward``, ``get_verifier``, ... by name.
"""

from grpo_core.errors import RegistrationError
from grpo_core.plugins.files import FILES_ENV, load_plugin_file
from grpo_core.plugins.loading import DEFAULT_PLUGINS, LOAD_ENV, load_plugins
from grpo_core.plugins.manager import pm
from grpo_core.plugins.provenance import provenance_of
from grpo_core.plugins.registries import Registries, plugin_summaries, registries, reset_for_tests

__all__ = [
    "pm",
    "load_plugins",
    "load_plugin_file",
    "registries",
    "Registries",
    "plugin_summaries",
    "provenance_of",
    "reset_for_tests",
    "RegistrationError",
    "DEFAULT_PLUGINS",
    "LOAD_ENV",
    "FILES_ENV",
]
