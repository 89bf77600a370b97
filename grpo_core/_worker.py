"""Entry point of a deadline worker process (see :mod:`grpo_core.deadline`)."""

import sys
from multiprocessing.connection import Connection

from grpo_core import deadline

if __name__ == "__main__":
    deadline._worker_main(Connection(int(sys.argv[1])))
