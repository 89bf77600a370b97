"""Sub-commands of ``grpo-core`` beyond the listings; each module adds one."""

from . import run  # noqa: F401
from . import score  # noqa: F401
from . import new_plugin  # noqa: F401
from . import eval  # noqa: F401
from . import export  # noqa: F401
