"""OLMo 2 preference mixes (allenai/olmo-2-1124-*-preference-mix): the UltraFeedback
layout with `chosen_rating`/`rejected_rating` as scores and per-row provenance columns."""

from __future__ import annotations

from harness.data.formats import FORMATS
from harness.data.formats.ultrafeedback_binarized import UltraFeedbackBinarized


@FORMATS.register()
class OLMo2Preference(UltraFeedbackBinarized):
    name = "olmo2_preference"
    score_columns = ("chosen_rating", "rejected_rating")
    metadata_columns = ("id", "source", "chosen_model", "rejected_model")
