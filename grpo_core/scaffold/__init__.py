"""``grpo-core new-plugin``: a new plugin package from templates."""

from grpo_core.scaffold.scaffold import Names, Scaffold, scaffold

__all__ = ["Names", "Scaffold", "scaffold"]
