"""The registries: what every loaded plugin registers, collected once per change of plugins."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grpo_core.errors import GrpoCoreError
from grpo_core.plugins import loading
from grpo_core.plugins.manager import call_each_implementation, load_lock, pm, warn
from grpo_core.plugins.provenance import forget as forget_provenance, provenance_of
from grpo_core.plugins.registry import Entry, Registry, RewardSpec, make_entry, make_reward_spec

_warned: set[str] = set()


def _pending_errors() -> dict[str, str]:
    """Hook implementations that match no hook (pluggy's check_pending, reported instead of raised)."""
    out: dict[str, str] = {}
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        for hc in pm.get_hookcallers(plugin) or []:
            mine = [i for i in hc.get_hookimpls() if i.plugin is plugin]
            if hc.spec is None and not all(i.optionalhook for i in mine):
                msg = f"plugin {name!r} implements {hc.name!r}, which is not a grpo-core hook (a typo?); it is ignored."
                out[f"{name}:{hc.name}"] = msg
                if msg not in _warned:
                    _warned.add(msg)
                    warn(msg)
    return out


@dataclass
class Registries:
    rewards: Registry[RewardSpec] = field(default_factory=lambda: Registry("reward"))
    verifiers: Registry[Entry] = field(default_factory=lambda: Registry("verifier"))
    datasets: Registry[Entry] = field(default_factory=lambda: Registry("dataset"))
    errors: dict[str, str] = field(default_factory=dict)
    registered_by: dict[str, dict[str, list[str]]] = field(default_factory=dict)


_cache: tuple[int, Registries] | None = None


def _plugins_signature() -> int:
    return pm.generation


def registries() -> Registries:
    """Collect what every loaded plugin registers (re-collected when plugins change)."""
    global _cache
    loading.load_plugins()
    with load_lock:  # one collection at a time (the engine and verifiers may call from threads)
        sig = _plugins_signature()
        if _cache is not None and _cache[0] == sig:
            return _cache[1]
        return _collect_all(sig)


def _collect_all(sig: int) -> "Registries":
    global _cache
    regs = Registries()
    regs.errors.update(loading.load_errors)
    regs.errors.update(_pending_errors())
    _collect(regs, "register_rewards", regs.rewards, lambda prov: (lambda func, name=None, **meta: make_reward_spec(func, name, prov, meta)))
    _collect(
        regs,
        "register_verifiers",
        regs.verifiers,
        lambda prov: (lambda v, name=None: make_entry("verifier", v, name, prov, ("extract", "verify", "check"))),
    )
    _collect(
        regs,
        "register_datasets",
        regs.datasets,
        lambda prov: (lambda a, name=None: make_entry("dataset", a, name, prov, ("load",))),
    )
    _cache = (sig, regs)
    return regs


def _collect(regs: Registries, hook_name: str, registry: Registry, make) -> None:
    def report(plugin_name: str, msg: str) -> None:
        key = f"{plugin_name}:{hook_name}"
        regs.errors[key] = f"{regs.errors[key]}\n{msg}" if key in regs.errors else msg
        warn(msg)

    def register_for(plugin_name: str):
        builder = make(provenance_of(plugin_name))

        def register(*args, **kwargs):
            # A bad registration is reported and skipped; the plugin's other
            # registrations still count (the first of a duplicated name is kept).
            try:
                item = registry.add(builder(*args, **kwargs))
            except GrpoCoreError as exc:
                report(plugin_name, str(exc))
                return None
            regs.registered_by.setdefault(plugin_name, {}).setdefault(registry.kind + "s", []).append(item.name)
            return item

        return register

    call_each_implementation(hook_name, register_for, report)


def plugin_summaries(include_builtins: bool = False) -> list[dict[str, Any]]:
    """One dict per loaded plugin: name, distribution, version, hooks, what it registered."""
    regs = registries()
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda np: np[0]):
        prov = provenance_of(name)
        if prov.plugin == "builtin" and not include_builtins:
            continue
        out.append(
            {
                "name": prov.plugin if prov.plugin != "builtin" else name,
                "distribution": prov.distribution,
                "version": prov.version,
                "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
                "registered": regs.registered_by.get(name, {}),
            }
        )
    return out


def reset_for_tests() -> None:
    """Forget loaded plugins so the next call re-reads entry points and the env."""
    global _cache
    with load_lock:
        for name, plugin in list(pm.list_name_plugin()):
            if plugin is None:
                pm.unblock(name)
            else:
                pm.unregister(plugin=plugin, name=name)
        loading.forget()
        forget_provenance()
        _cache = None
        _warned.clear()
