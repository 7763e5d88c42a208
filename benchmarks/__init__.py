"""Benchmarks of eventstore beside baselines measured in the same run (``make bench``).

Not part of the installed package: they live in the source repository, with their peer
(``eventsourcing``) pinned in the ``bench`` dependency group of pyproject.toml. Figures are
recorded in docs/performance.md.
"""
