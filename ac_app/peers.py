"""What the AC asks of its peers: a DC agent, the ARAE over all of them, and the SC over ASI.

The procedure, the migration and the orphan sweep are written against these protocols only;
`ac_app.arae.AgentClient`, `ac_app.arae.Arae` and `ac_app.asi_client.AsiClient` (or
`ac_app.alto_client.AltoEvaluation`) implement them live, and the unit tests' fakes in process.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Protocol, Sequence

from ac_app.resources import AppView, Demand


class AgentApi(Protocol):
    """What the AC asks of a DC agent (`ac_app.arae.AgentClient`)."""

    def create_vm(self, vm_id: str, demand: Demand, server: Optional[str] = None,
                  ip: Optional[str] = None) -> dict[str, Any]: ...

    def delete_vm(self, vm_id: str) -> dict[str, Any]: ...

    def vms(self) -> list[dict[str, Any]]: ...


class AppStratum(Protocol):
    """What the AC asks of the ARAE (`ac_app.arae.Arae`)."""

    def app_view(self) -> AppView: ...

    def client(self, dc: str) -> AgentApi: ...

    def poll(self, dc: str) -> Any: ...

    def available(self) -> list[str]: ...


class Network(Protocol):
    """What the AC asks of the SC (`ac_app.asi_client.AsiClient`)."""

    def establish(self, src: str, dst: str, service_type: str, label: Optional[str] = None,
                  constraints: Optional[Mapping[str, Any]] = None,
                  dst_node: Optional[str] = None) -> dict[str, Any]: ...

    def teardown(self, lp_id: str) -> Optional[dict[str, Any]]: ...

    def evaluate(self, src: str, dsts: Sequence[str],
                 constraints: Optional[Mapping[str, Any]] = None) -> dict[str, Any]: ...

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]: ...
