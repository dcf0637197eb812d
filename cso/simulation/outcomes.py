"""How each request of a simulation was served, whichever driver served it, and agreement.

`Served` is one request's outcome in terms both drivers can tell: accepted or refused, by
which stratum and for which reason code, and for an accepted request the server, the
lightpath's route and its wavelength. `TracedSimulator` is the fast engine
(`cso.simulation.engine.Simulator`) keeping a `Served` per request; the stack driver
(`cso.simulation.stack.StackSimulator`) keeps the same from the live controllers' objects,
and `compare` sets two such lists side by side, request by request. The live replay
(`cso.simulation.live`) checks the AC's choices against a `TracedSimulator` too.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

from ac_app.resources import Demand
from ac_app.sse import Decision
from cso.simulation.engine import Point, Simulator

OK = "ok"
#: Disagreements listed by `compare` (the count is always complete).
SHOWN_DISAGREEMENTS = 5


@dataclass(frozen=True)
class Served:
    """One request: accepted (`OK`) or refused by a stratum, why, and where it was served."""

    outcome: str                    # OK, or the refusing stratum: "network" / "application"
    reason: str = ""                # the refusal's reason code (`cso_base.wire`, the SSE's)
    server: Optional[str] = None
    #: The lightpath's nodes; one node for a server at the user's own node (no fibre).
    route: tuple[str, ...] = ()
    wavelength: Optional[int] = None

    @property
    def hops(self) -> int:
        """Fibres crossed (0 for a refusal or a server at the user's node)."""
        return max(0, len(self.route) - 1)

    def to_json(self) -> dict[str, Any]:
        """The outcome as JSON."""
        return {**asdict(self), "route": list(self.route)}


class _TracedPce:
    """The simulator's SA-PCE, keeping the answer of the last reservation (a refusal's why)."""

    def __init__(self, pce: Any):
        self.pce = pce
        self.last: Any = None

    def reserve(self, *args: Any, **kwargs: Any) -> Any:
        """`PCE.reserve`, remembered."""
        self.last = self.pce.reserve(*args, **kwargs)
        return self.last

    def release(self, path: Any, owner: str) -> None:
        """`PCE.release`."""
        self.pce.release(path, owner)


class TracedSimulator(Simulator):
    """The fast engine, unchanged, keeping how it served each request (``served``)."""

    def __init__(self, point: Point):
        super().__init__(point)
        self.pce = _TracedPce(self.pce)             # type: ignore[assignment]
        self.served: list[Served] = []
        self._decision: Optional[Decision] = None
        self._path: Any = None

    def decide(self, src: str, demand: Demand) -> Decision:
        """The strategy's choice, remembered."""
        self._decision = super().decide(src, demand)
        return self._decision

    def _accepted(self, path: Any, server_id: Optional[str], demand: Demand,
                  holding: float) -> None:
        self._path = path
        super()._accepted(path, server_id, demand, holding)

    def arrive(self, src: str, dst: Optional[str], demand: Demand, holding: float) -> str:
        """Serve as the engine does; record the `Served`."""
        self._decision = self._path = self.pce.last = None
        outcome = super().arrive(src, dst, demand, holding)
        self.served.append(self._served(src, outcome))
        return outcome

    def _served(self, src: str, outcome: str) -> Served:
        decision = self._decision
        if outcome == OK:
            server = decision.server.server if decision is not None else None
            if self._path is None:
                return Served(OK, server=server, route=(src,))
            return Served(OK, server=server, route=tuple(self._path.route),
                          wavelength=self._path.wavelength)
        if decision is not None and not decision.ok:
            return Served(outcome, decision.reason)
        return Served(outcome, self.pce.last.reason)  # the reservation's NoPath


def compare(first: Sequence[Served], second: Sequence[Served],
            names: tuple[str, str] = ("engine", "stack")) -> dict[str, Any]:
    """Two drivers' outcomes request by request: how many, how many agree, the first that
    do not (request index and both outcomes)."""
    agree = 0
    shown: list[dict[str, Any]] = []
    for index, (a, b) in enumerate(zip(first, second)):
        if a == b:
            agree += 1
        elif len(shown) < SHOWN_DISAGREEMENTS:
            shown.append({"request": index, names[0]: a.to_json(), names[1]: b.to_json()})
    return {"compared": min(len(first), len(second)), "agree": agree,
            "lengths": [len(first), len(second)], "first_disagreements": shown}
