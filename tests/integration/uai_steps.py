"""What the AC's integration tests share: the demo's tokens, the UAI's requests and a vm request.

The tokens are those of the demo configuration the `ac` fixture runs (`harness.DEMO_USERS`,
`harness.DEMO_TOKENS`).
"""
from __future__ import annotations

from typing import Any

from cso.emulation import lab as harness

USER = harness.DEMO_USERS["demo-user"][1]
MANAGER = harness.DEMO_USERS["demo-manager"][1]
OTHER = harness.DEMO_USERS["other-user"][1]
#: The AC's own token at the SC's ASI.
AC_TOKEN = harness.DEMO_TOKENS["demo-ac"]
REQS = "/uai/v1/requests"


def served_vm(ac: harness.AcRun, net: harness.NetRun, host: str = "u5") -> dict[str, Any]:
    """A vm request (2 CPU, 4 GB memory, 20 GB disk) from ``host``'s address, served: its record."""
    resp = ac.request("POST", REQS, {"type": "vm", "src": net.ip(host), "cpu": 2, "memory_gb": 4,
                                     "disk_gb": 20}, token=USER)
    assert resp.status == 201, resp.json
    return resp.json
