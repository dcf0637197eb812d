"""The AC assembled from its settings: "AC comprises UA, SSE, DB and ARAE" (CSO draft §3.1).

`AcService` builds, from an `AcSettings`:

- the DB (`ac_app.db.RequestStore`): every request, what it holds, its accounting;
- the ARAE (`ac_app.arae.Arae`): each DC's application resources, polled from its agent;
- the ASI client to the SC (`ac_app.asi_client.AsiClient`); with ``network_view = alto`` the
  evaluations come from the SC's ALTO costs (`ac_app.alto_client.AltoEvaluation`) and the
  lightpaths still from ASI;
- the SSE (`ac_app.sse.Sse`): the configured strategy;
- the CSO procedure (`ac_app.procedure.Procedure`) and VM migration
  (`ac_app.migration.Migration`), which run the SSE, the ARAE and ASI;
- the UA (`ac_app.ua.Ua`) in front of them, and its REST shell, the UAI (`ac_app.uai`): ``app``;
- DC failover (`ac_app.failover.DcFailover`), an ARAE listener that moves or ends the requests
  of a DC that fails.

It only wires these plain parts together and runs the background green threads (the ARAE's
polling, and housekeeping: expiry, unconfirmed releases, the orphan sweep). ``cso ac`` serves
its ``app``; tests build it with fakes in place of the ARAE and the SC.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Mapping, Optional, Protocol

from ac_app.arae import Arae, DcState

import eventlet  # noqa: I100 - after ac_app.arae, which silences eventlet's notice
from ac_app.alto_client import AltoClient, AltoEvaluation
from ac_app.asi_client import AsiClient
from ac_app.config import AcSettings
from ac_app.db import DB_FILE, RequestStore
from ac_app.failover import DcFailover
from ac_app.migration import Migration
from ac_app.peers import AppStratum, Network
from ac_app.procedure import Procedure
from ac_app.resources import Demand
from ac_app.sse import Sse
from ac_app.ua import Ua
from ac_app.uai import make_app
from cso_base.wsgi import WsgiApp

LOG = logging.getLogger(__name__)

#: Seconds between housekeeping rounds: a request outlives its duration by at most this.
HOUSEKEEPING_INTERVAL = 1.0


class AppStratumService(AppStratum, Protocol):
    """The ARAE as the service runs it: the procedure's view, plus polling and DC states."""

    def states(self) -> Mapping[str, DcState]: ...

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    def subscribe(self, listener: Callable[[DcState], None]) -> None: ...


def build_sse(settings: AcSettings) -> Sse:
    """The SSE with the configured strategy and those of its parameters the settings give."""
    return Sse.named(settings.strategy, a=settings.glb_a, b=settings.glb_b, k=settings.glb_k,
                     rng=settings.random_seed)


class AcService:
    """Every part of the AC, built from `AcSettings`; `start` and `stop` its green threads."""

    def __init__(self, settings: AcSettings, arae: Optional[AppStratumService] = None,
                 asi: Optional[Network] = None, db_path: Optional[str] = None,
                 alto: Optional[AltoClient] = None, **procedure_kwargs: Any):
        self.settings = settings
        self.db = RequestStore(db_path or os.path.join(settings.state_dir, DB_FILE))
        self.arae = arae if arae is not None else Arae(
            settings.agents, token=settings.agent_token or None,
            interval=settings.agent_poll_interval, timeout=settings.agent_timeout,
            max_failures=settings.agent_failures)
        self.asi = asi if asi is not None else AsiClient(settings.sc_url, settings.sc_token,
                                                         settings.sc_timeout)
        network: Network = self.asi
        if settings.network_view == "alto":
            network = AltoEvaluation(self.asi, alto if alto is not None else AltoClient(
                settings.alto_directory_url, settings.sc_token, settings.sc_timeout),
                settings.topology)
        self.sse = build_sse(settings)
        self.procedure = Procedure(
            self.db, self.arae, network, self.sse, settings.topology,
            leftover_alarm_after_s=settings.leftover_alarm_after_s,
            orphan_sweep_interval_s=settings.orphan_sweep_interval_s,
            orphan_sweep_vms=settings.orphan_sweep_vms, **procedure_kwargs)
        self.migration = Migration(self.procedure)
        self.ua = Ua(self.procedure, self.migration, settings.topology,
                     Demand(settings.vod_cpu, settings.vod_memory_gb, settings.vod_disk_gb),
                     settings.default_duration_s, settings.max_duration_s)
        # DC failure: the requests of a DC the ARAE reports unavailable are moved or ended.
        self.failover = DcFailover(self.procedure, self.migration)
        self.arae.subscribe(self.failover.on_change)
        self.app: WsgiApp = make_app(self.ua, settings.users, self._dcs)
        self._housekeeper: Optional[eventlet.greenthread.GreenThread] = None
        self._checker: Optional[eventlet.greenthread.GreenThread] = None

    def _dcs(self) -> dict[str, Any]:
        return {dc: state.to_json() for dc, state in self.arae.states().items()}

    def start(self) -> "AcService":
        """Settle what a previous run left, then poll the agents and keep house."""
        settled = self.procedure.recover()
        if settled:
            LOG.warning("settled %d request(s) left by the previous run", len(settled))
        self.arae.start()
        if self._housekeeper is None:
            self._housekeeper = eventlet.spawn(self._housekeeping)
            self._checker = eventlet.spawn_after(self._grace(), self._check_dcs)
        return self

    def _grace(self) -> float:
        """Seconds after start until a DC whose agent never answered counts as failed."""
        return float(getattr(self.arae, "stale_after", 0.0)) or (
            self.settings.agent_failures * self.settings.agent_poll_interval
            + self.settings.agent_timeout)

    def _check_dcs(self) -> None:
        try:
            self.failover.check(self.arae.states())
        except Exception:  # noqa: BLE001 - logged; the ARAE's listener still works
            LOG.exception("checking the DCs after start-up failed")

    def _housekeeping(self) -> None:
        while True:
            try:
                self.procedure.housekeeping()
            except Exception:  # noqa: BLE001 - expiry must go on; the failure is logged
                LOG.exception("housekeeping failed")
            eventlet.sleep(HOUSEKEEPING_INTERVAL)

    def stop(self) -> None:
        """Stop the background green threads (requests stay as they are: `start` resumes)."""
        for thread in (self._housekeeper, self._checker):
            if thread is not None:
                thread.kill()
        self._housekeeper = self._checker = None
        self.arae.stop()

    def close(self) -> None:
        """Stop and close the DB."""
        self.stop()
        self.db.close()
