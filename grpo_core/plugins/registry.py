"""Registries of rewards, verifiers and dataset adapters, with provenance.

The core owns registration. Every item records the plugin and distribution
(with version) it came from. The collision rule:

* the same plugin registering one name twice is a bug in that plugin: the
  second call raises :class:`RegistrationError` (reported as a plugin error);
* two *different* plugins registering one name are both kept. Each is always
  reachable by its qualified name ``plugin/name``; the bare name becomes
  ambiguous and using it is an error that lists the qualified names, except
  where one of them is grpo-core's own (built-in): the built-in keeps the bare
  name, with a warning, so a plugin cannot break the default run and presets.
  The collision is reported by ``grpo-core plugins`` and the listing commands.

Nothing is ever silently overwritten, and results never depend on the order
in which plugins happened to load.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from grpo_core.errors import AmbiguousNameError, RegistrationError, UnknownNameError


@dataclass(frozen=True)
class Provenance:
    plugin: str  #: pluggy plugin name (the entry-point name, or the built-in module)
    distribution: str | None  #: the installed distribution, None for in-process plugins
    version: str | None
    origin: str | None = None  #: the file of a plugin loaded with load_plugin_file

    def describe(self) -> str:
        if self.distribution:
            return f"{self.distribution} {self.version or ''}".strip()
        if self.origin:
            return f"{self.plugin} (file {self.origin})"
        return f"{self.plugin} (in-process)"


@dataclass
class RewardSpec:
    """A registered reward function and what the core knows about it."""

    name: str
    func: Callable
    provenance: Provenance
    description: str = ""
    requires: tuple[str, ...] = ()
    default_weight: float = 1.0
    timeout: float | None = None
    cpu_bound: bool = False
    is_async: bool = False
    extra: dict = field(default_factory=dict)
    #: keyword options, name -> value: as declared, the defaults; in a resolved selection, the values in force
    options: dict = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.provenance.plugin}/{self.name}"

    def __call__(self, completions, **kwargs):
        return self.func(completions, **kwargs)

    def summary(self) -> dict:
        return {
            **_identity(self),
            "requires": list(self.requires),
            "default_weight": self.default_weight,
            "timeout": self.timeout,
            "cpu_bound": self.cpu_bound,
            "async": self.is_async,
            "options": dict(self.options),
        }


def _identity(registered: "RewardSpec | Entry") -> dict:
    """What every listing says of a registered reward, verifier or dataset: its names, provenance and description."""
    return {
        "name": registered.name,
        "qualified_name": registered.qualified_name,
        "plugin": registered.provenance.plugin,
        "distribution": registered.provenance.distribution,
        "version": registered.provenance.version,
        "description": registered.description,
    }


@dataclass
class Entry:
    """A registered verifier or dataset adapter."""

    name: str
    obj: Any
    provenance: Provenance
    description: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.provenance.plugin}/{self.name}"

    def summary(self) -> dict:
        d = _identity(self)
        verifier = getattr(self.obj, "verifier", None)
        if isinstance(verifier, str):
            d["verifier"] = verifier
        return d


T = TypeVar("T", RewardSpec, Entry)
#: the plugin name of grpo-core's own rewards, verifiers and datasets (see plugins.provenance)
BUILTIN_PLUGIN = "builtin"


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._by_qualified: dict[str, T] = {}
        self._by_name: dict[str, list[T]] = {}
        self._warned: set[str] = set()

    def add(self, item: T) -> T:
        q = item.qualified_name
        if q in self._by_qualified:
            raise RegistrationError(
                f"plugin {item.provenance.plugin!r} registered the {self.kind} {item.name!r} twice; "
                f"give each {self.kind} its own name (register(..., name='...'))."
            )
        self._by_qualified[q] = item
        self._by_name.setdefault(item.name, []).append(item)
        return item

    def get(self, name: str) -> T:
        if name in self._by_qualified:
            return self._by_qualified[name]
        found = self._by_name.get(name)
        if not found:
            raise UnknownNameError(self.kind, name, self.names())
        if len(found) > 1:
            builtin = [i for i in found if i.provenance.plugin == BUILTIN_PLUGIN]
            if len(builtin) == 1:
                self._warn_shadowed(name, builtin[0], found)
                return builtin[0]
            raise AmbiguousNameError(self.kind, name, [i.qualified_name for i in found])
        return found[0]

    def _warn_shadowed(self, name: str, builtin: T, found: list[T]) -> None:
        """Once per name: grpo-core's own item keeps the bare name; the plugin's is reached by its qualified name."""
        if name in self._warned:
            return
        self._warned.add(name)
        others = ", ".join(i.qualified_name for i in found if i is not builtin)
        print(f"grpo-core: warning: {self.kind} {name!r} is also registered by {others}; the bare name means grpo-core's own "
              f"({builtin.qualified_name}). Use the qualified name for the other.", file=sys.stderr)

    def names(self) -> list[str]:
        """Bare names where unique, qualified names where they collide."""
        out = []
        for name, items in self._by_name.items():
            out.extend([name] if len(items) == 1 else [i.qualified_name for i in items])
        return sorted(out)

    def collisions(self) -> dict[str, list[str]]:
        return {n: [i.qualified_name for i in items] for n, items in self._by_name.items() if len(items) > 1}

    def __iter__(self) -> Iterator[T]:
        return iter(sorted(self._by_qualified.values(), key=lambda i: (i.name, i.qualified_name)))

    def __len__(self) -> int:
        return len(self._by_qualified)

    def __contains__(self, name: str) -> bool:
        return name in self._by_qualified or name in self._by_name


_REWARD_KEYS = {"description", "requires", "default_weight", "timeout", "cpu_bound", "options"}
#: keyword arguments TRL (and the engine) pass to every reward: an option may not take one of these names
RESERVED_REWARD_KWARGS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments")
_OPTION_SCALARS = (str, int, float, bool, type(None))


def check_options(name: str, func: Any, options: Any) -> dict:
    """A reward's declared options: identifiers (not TRL's keyword names) -> JSON scalars or lists, each a
    keyword parameter of ``func`` (or taken by its ``**kwargs``)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise RegistrationError(f"reward {name!r}: options must be a mapping of option name -> default, got {options!r}.")
    try:
        params = inspect.signature(func).parameters.values()
        takes = {p.name for p in params} if not any(p.kind is p.VAR_KEYWORD for p in params) else None
    except (TypeError, ValueError):  # a builtin or an exotic callable: nothing to check against
        takes = None
    for key, default in options.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise RegistrationError(f"reward {name!r}: option name {key!r} must be a Python identifier (it is passed as a keyword).")
        if key in RESERVED_REWARD_KWARGS:
            raise RegistrationError(f"reward {name!r}: option {key!r} collides with a keyword argument TRL passes to every reward "
                                    f"({', '.join(RESERVED_REWARD_KWARGS)}); choose another name.")
        if not (isinstance(default, _OPTION_SCALARS) or isinstance(default, list) and all(isinstance(v, _OPTION_SCALARS) for v in default)):
            raise RegistrationError(f"reward {name!r}: option {key!r} default must be a JSON scalar or a list of them, got {default!r}.")
        if takes is not None and key not in takes:
            raise RegistrationError(f"reward {name!r}: option {key!r} is not a parameter of {func!r}; add `{key}={default!r}` to its "
                                    "parameters (or **kwargs).")
    return dict(options)


def _callable_name(obj: Any) -> str | None:
    name = getattr(obj, "__name__", None)
    if not name and not inspect.isfunction(obj) and hasattr(type(obj), "__call__"):
        name = getattr(obj, "name", None)
    if name == "<lambda>":  # every lambda has this name: make the plugin choose one
        return None
    return name if isinstance(name, str) and name else None


def _is_async(obj: Any) -> bool:
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(getattr(obj, "__call__", None))


def check_name(kind: str, name: Any) -> str:
    """Names are used on command lines: no separators, no whitespace."""
    if not isinstance(name, str) or not name or any(ch in name for ch in "/:,") or any(ch.isspace() for ch in name):
        raise RegistrationError(
            f"{kind} name {name!r} is not usable: it must be a non-empty string without whitespace, "
            "'/', ':' or ',' (they separate plugin, weight and list entries)."
        )
    return name


def _first_doc_line(obj: Any) -> str:
    while isinstance(obj, functools.partial):  # partial's own docstring describes partial, not the reward
        obj = obj.func
    if not (inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj)):
        obj = type(obj)  # a callable object or an adapter instance: its class's docstring
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    # never inherited: a base class's docstring does not describe this item
    return inspect.cleandoc(doc).strip().split("\n")[0] if isinstance(doc, str) and doc.strip() else ""


def make_reward_spec(func: Any, name: str | None, provenance: Provenance, metadata: dict) -> RewardSpec:
    if not callable(func) or inspect.isclass(func):
        raise RegistrationError(
            f"register_rewards: {func!r} is not a reward function; register a callable func(completions, **kwargs) "
            "(an instance, not a class)."
        )
    if name is None:
        name = _callable_name(func)
        if not name:
            raise RegistrationError(
                f"register_rewards: cannot name {func!r} (a functools.partial or callable without __name__); "
                "pass register(func, name='my_reward')."
            )
    name = check_name("reward", name)
    extra = {k: v for k, v in metadata.items() if k not in _REWARD_KEYS}
    requires = metadata.get("requires", ())
    if isinstance(requires, str):
        requires = (requires,)
    try:
        requires = tuple(requires)
    except TypeError:
        requires = (requires,)
    if not all(isinstance(r, str) and r for r in requires):
        raise RegistrationError(f"reward {name!r}: requires must be column names (strings), got {metadata.get('requires')!r}.")
    weight = metadata.get("default_weight", 1.0)
    if isinstance(weight, bool):
        raise RegistrationError(f"reward {name!r}: default_weight must be a number, got {weight!r}.")
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        raise RegistrationError(f"reward {name!r}: default_weight must be a number, got {weight!r}.") from None
    if not math.isfinite(weight):
        raise RegistrationError(f"reward {name!r}: default_weight must be finite, got {weight}.")
    timeout = metadata.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or not timeout > 0
    ):
        raise RegistrationError(f"reward {name!r}: timeout must be a positive, finite number of seconds, got {timeout!r}.")
    cpu_bound = metadata.get("cpu_bound", False)
    if not isinstance(cpu_bound, bool):
        raise RegistrationError(f"reward {name!r}: cpu_bound must be True or False, got {cpu_bound!r}.")
    description = metadata.get("description")
    if description is not None and not isinstance(description, str):
        raise RegistrationError(f"reward {name!r}: description must be a string, got {description!r}.")
    description = description or _first_doc_line(func)
    return RewardSpec(
        name=name,
        func=func,
        provenance=provenance,
        description=description,
        requires=requires,
        default_weight=weight,
        timeout=float(timeout) if timeout is not None else None,
        cpu_bound=cpu_bound,
        is_async=_is_async(func),
        extra=extra,
        options=check_options(name, func, metadata.get("options")),
    )


def make_entry(kind: str, obj: Any, name: str | None, provenance: Provenance, required: tuple[str, ...]) -> Entry:
    if inspect.isclass(obj):
        raise RegistrationError(f"register_{kind}s: {obj!r} is a class; register an instance, e.g. register({obj.__name__}()).")
    missing = [m for m in required if not callable(getattr(obj, m, None))]
    if missing:
        raise RegistrationError(
            f"register_{kind}s: {obj!r} lacks {', '.join(missing)}; a {kind} needs {', '.join(required)}."
        )
    name = name if name is not None else (getattr(obj, "name", None) or _callable_name(obj))
    if not name:
        raise RegistrationError(f"register_{kind}s: give {obj!r} a name (a `name` attribute, or register(obj, name='...')).")
    name = check_name(kind, name)
    description = getattr(obj, "description", "") or _first_doc_line(obj)
    return Entry(name=name, obj=obj, provenance=provenance, description=str(description))
