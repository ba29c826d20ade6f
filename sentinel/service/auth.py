"""Who is calling: a device (bearer token bound to one device and one site) or the admin.

The errors are distinct on purpose. `unauthorized` (no or unknown token) and `token_revoked`
need different reactions on the device: the first is a misconfiguration a technician fixes, the
second means this box was retired or reported stolen and must stop checking people.
`wrong_device` / `wrong_site` catch a device that was re-bound but still sends old ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sentinel.service.errors import ApiException
from sentinel.service.limits import retry_after
from sentinel.service.store import DeviceRow, Store
from sentinel.service.tokens import same_secret

_bearer = HTTPBearer(auto_error=False, description="Device token from POST /v1/devices/bind, or the admin token")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
log = logging.getLogger("sentinel.service")


def client_address(request: Request) -> str:
    """The TCP peer (a proxy in front makes every client its own address; see docs/api.md)."""
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Caller:
    device: DeviceRow | None  # None: the admin

    @property
    def is_admin(self) -> bool:
        return self.device is None


def _unauthorized(message: str) -> ApiException:
    return ApiException(401, "unauthorized", message, _CHALLENGE)


def _resolve(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    """The caller behind the bearer token, revoked or not."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized("missing bearer token (Authorization: Bearer <token>)")
    token = credentials.credentials
    if same_secret(token, request.app.state.admin_token):
        return Caller(device=None)
    store: Store = request.app.state.store
    device = store.device_for_token(token)
    if device is None:
        address = client_address(request)
        wait = request.app.state.limits.bad_token.take(address)
        log.warning("unknown bearer token from %s on %s%s", address, request.url.path, " (rate limited)" if wait else "")
        if wait:
            raise ApiException(429, "rate_limited", "too many unknown tokens from this address; wait", retry_after(wait))
        raise _unauthorized("unknown token")
    return Caller(device=device)


def caller(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Caller:
    who = _resolve(request, credentials)
    device = who.device
    if device is not None and device.revoked:
        raise ApiException(401, "token_revoked", f"device {device.id} has been revoked; bind it again with a new code", _CHALLENGE)
    return who


def device_caller_even_revoked(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> DeviceRow:
    """A device token, accepted even once revoked: only for the device's own revocation, which is
    idempotent (a wipe that is retried must not fail because the first attempt got through)."""
    who = _resolve(request, credentials)
    if who.device is None:
        raise ApiException(403, "device_only", "this endpoint is for devices; use a device token")
    return who.device


async def device_caller(who: Caller = Depends(caller)) -> DeviceRow:
    # a coroutine (as admin_caller): it does no I/O, and FastAPI runs a sync dependency on its
    # thread pool, one hop more per request
    if who.device is None:
        raise ApiException(403, "device_only", "this endpoint is for devices; use a device token")
    return who.device


async def admin_caller(who: Caller = Depends(caller)) -> Caller:
    if not who.is_admin:
        raise _unauthorized("admin token required")
    return who


def check_device(device: DeviceRow, device_id: str, site_id: str | None = None) -> None:
    if device_id != device.id:
        raise ApiException(403, "wrong_device", f"this token belongs to device {device.id}, not {device_id}")
    if site_id is not None and site_id != device.site_id:
        raise ApiException(403, "wrong_site", f"device {device.id} is bound to site {device.site_id}, not {site_id}")
