"""The rating service's one event, built here and nowhere else: RatingGiven (its payload
is domain.rating_given). ratings.py hands it to the store with the rating."""
from __future__ import annotations

from typing import Mapping

from motcua_common.events import new_event

from . import domain


def rating_given(rating: Mapping) -> dict:
    return new_event("RatingGiven", rating["ward_id"], domain.rating_given(rating))
