"""``seq2seq-attn study``: attention mechanisms compared across text and image tasks on the one core.

- :mod:`.config`: the study file (tasks × mechanisms × seeds) and its expansion into cells;
- :mod:`.tasks`: each task kind's lifecycle (train through the one Trainer, quality, loaded ``Task``);
- :mod:`.runner`: cells trained in their own run dirs, reused, resumed, shared out between processes;
- :mod:`.measure`: cost on one batch and attention statistics from ``capture_attention``;
- :mod:`.growth`: time and memory against the number of positions, fitted growth exponents;
- :mod:`.report`, :mod:`.figures`, :mod:`.papers`: the Markdown/CSV/PNG report beside the papers' figures.
"""

from .config import Cell, StudyConfig, expand_cells, load_study
from .growth import fit_exponent, run_growth
from .report import write_report
from .runner import run_study, shard_cells

__all__ = ["Cell", "StudyConfig", "expand_cells", "fit_exponent", "load_study", "run_growth", "run_study",
           "shard_cells", "write_report"]
