"""Sweeps: a recipe plus a grid of dotted overrides, run point by point, reported with multi-seed statistics.

- `config.py`  the sweep file (`recipes/studies/*.yaml`) or a command-line grid, as a frozen, validated config
- `grid.py`    grid expansion into points, and every point loaded and validated before anything runs
- `plan.py`    `harness sweep plan`: each point, and the data steps and stages points share (by fingerprint)
- `run.py`     `harness sweep run`: points one after another, resumable; records tagged with the sweep
- `stats.py`   hierarchical (seeds, then items) bootstrap, its paired form, Holm's step-down correction
- `report.py`  `harness sweep report`: the table, significance against the baseline, plots and their data
- `slurm.py`   `harness sweep slurm`: a SLURM job-array script, one array task per point
"""
