"""What the gateway's dashboard-facing routes are made of (events fan-out, tickets, prediction
stats, the deployer port for ownership checks)."""

from __future__ import annotations

from dataclasses import dataclass

from kubeserve_gateway.adapters.deployer import DeployerPort
from kubeserve_gateway.domain.tickets import TicketIssuer
from kubeserve_gateway.services.events import EventHub
from kubeserve_gateway.services.prediction_stats import PredictionStats


@dataclass
class BrowserComponents:
    """What the dashboard-facing routes need, built by `bootstrap.build_components`."""

    hub: EventHub
    tickets: TicketIssuer
    stats: PredictionStats
    deployer: DeployerPort
