"""Entry point of a deadline worker process (see :mod:`grpo_core.runtime.deadline`)."""

import sys
from multiprocessing.connection import Connection

from grpo_core.runtime import deadline

if __name__ == "__main__":
    deadline._worker_main(Connection(int(sys.argv[1])))
