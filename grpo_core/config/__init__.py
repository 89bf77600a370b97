"""Run settings: :mod:`~grpo_core.config.settings` (``RunConfig``, YAML, ``--set``) and the named presets."""
