"""Search for translation models: one implementation (:mod:`.beam`) for beam search, greedy search and
sampling, its step rules (:mod:`.scores`: length and coverage penalties, repetition penalty, n-gram blocking,
forced tokens), sampling filters (:mod:`.sampling`) and model ensembles (:mod:`.ensemble`)."""

from .beam import Hypothesis, beam_search, greedy_search, search, step_scores
from .ensemble import EnsembleModel
from .sampling import filter_logits
from .scores import coverage_penalty, length_penalty

__all__ = ["EnsembleModel", "Hypothesis", "beam_search", "coverage_penalty", "filter_logits", "greedy_search",
           "length_penalty", "search", "step_scores"]
