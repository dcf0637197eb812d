"""The simulator's network stratum: the SSE's `NetworkView` over an in-process SA-PCE.

The live AC asks the SC over ASI (`ac_app.asi_client.AsiNetworkView`); the simulator
and offline tools ask the same SA-PCE code directly. Both give the same `PathInfo`
for the same network state (tests hold them to it), so the simulator and the live AC
choose alike.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

from ac_app.resources import PathInfo
from sc_app.pce import PCE, Constraints, NoPath, Path


def path_info_from_pce(result: Union[Path, NoPath]) -> PathInfo:
    """The `PathInfo` of an SA-PCE answer (`PCE.compute` / `PCE.evaluate`)."""
    if isinstance(result, NoPath):
        return PathInfo(False, reason=result.reason, detail=result.detail)
    return PathInfo(True, result.hops, result.te_cost, result.delay_ms,
                    result.free_mask.bit_count())


class PceNetworkView:
    """A `NetworkView` over an in-process SA-PCE (the simulator's and offline tools')."""

    def __init__(self, pce: PCE, constraints: Optional[Constraints] = None):
        self.pce = pce
        self.constraints = constraints

    def evaluate(self, src: str, dsts: Sequence[str]) -> dict[str, PathInfo]:
        """`PCE.evaluate` (no reservation), each answer as a `PathInfo`."""
        answers = self.pce.evaluate(src, dsts, self.constraints)
        return {dst: path_info_from_pce(result) for dst, result in answers.items()}
