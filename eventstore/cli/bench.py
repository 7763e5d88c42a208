"""CLI command: bench, a thin delegator to the repository's ``benchmarks`` (not in the wheel).

In a source checkout (``make demo``/``make test`` install it editable) ``eventstore bench``
is ``python -m benchmarks``; from a wheel it says where the benchmarks are.
"""

from __future__ import annotations

from ..errors import UserError
from .base import main

try:
    from benchmarks.__main__ import bench as _bench
except ImportError:  # installed from a wheel: the benchmarks stay in the repository

    @main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def bench() -> None:
        """Benchmarks (docs/performance.md): run 'make bench' in a source checkout."""
        raise UserError("the benchmarks live in the source repository (benchmarks/): run 'make bench' there")

else:
    main.add_command(_bench, "bench")
