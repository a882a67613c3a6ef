"""The rating worker: nameko wiring only. Each event handler (and the RPC identity asks
when a citizen rates by SMS, ratings.rate_by_sms) calls the use case the tests call too: opportunities.py (what may be rated), wards.py (wards opened, for names in
statistics and rankings), and the shared SessionsRevoked record."""
from __future__ import annotations

from motcua_common.nameko_rpc import rpc

from motcua_common.deps import deps_provider
from motcua_common.consumer import event_handler
from motcua_common.events import Event
from motcua_common.revocations import on_sessions_revoked

from . import office_ratings, opportunities, ratings, wards
from .deps import SERVICE, build_deps


class RatingService:
    name = SERVICE
    deps = deps_provider(build_deps)()  # rating's Deps, built once per worker process

    @rpc
    def rate_dossier_by_sms(self, receipt_code: str, score: str) -> dict:
        """identity's question when a citizen answers the result-ready SMS with 1, 2 or 3."""
        return ratings.rate_by_sms(self.deps, receipt_code, score)

    @event_handler("TicketServed")
    def ticket_served(self, event: Event) -> str:
        return opportunities.on_ticket_served(self.deps, None, event)

    @event_handler("DossierResultReady")
    def dossier_result_ready(self, event: Event) -> str:
        return opportunities.on_dossier_result_ready(self.deps, None, event)

    @event_handler("DossierStatusChanged")
    def dossier_status_changed(self, event: Event) -> str:
        return opportunities.on_dossier_status_changed(self.deps, None, event)

    @event_handler("WardOpened")
    def ward_opened(self, event: Event) -> str:
        return wards.on_ward_opened(self.deps, None, event)

    @event_handler("RatingGiven")
    def rating_given(self, event: Event) -> str:
        """Ratings given at the wards' offices, for the centre's statistics and rankings."""
        return office_ratings.on_rating_given(self.deps, None, event)

    @event_handler("SessionsRevoked")
    def sessions_revoked(self, event: Event) -> str:
        return on_sessions_revoked(self.deps.db, SERVICE, event)


SERVICES = [RatingService]
