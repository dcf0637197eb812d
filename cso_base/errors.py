"""What a refusal carries in every layer: a machine-readable code and a reason for people.

The JSON error bodies of every interface are ``{"error": code, "reason": ..., ...}``. Each
layer's error adds what it needs: `cso_base.rest.ApiError` its HTTP status, the SA's
`sc_app.sa.SaError` and the AC's `ac_app.requests.RequestError` a kind that their REST shell
maps to a status.
"""
from __future__ import annotations

from typing import Optional


class CodedError(Exception):
    """A refusal: ``code`` for programs, ``reason`` for people.

    The message reads ``<label> <code>: <reason>``, then ``detail`` if any; the label says
    which sort of refusal it is (an HTTP status, a kind).
    """

    def __init__(self, label: object, code: str, reason: str, detail: Optional[str] = None):
        super().__init__(f"{label} {code}: {reason}" + (f" {detail}" if detail else ""))
        self.code = code
        self.reason = reason
