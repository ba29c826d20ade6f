"""Every error the service gives is an `ApiError` body with a stable code, never FastAPI's default
`{"detail": …}`: the device's client branches on `error` (token_revoked means "stop and ask for a
technician", a 5xx means "retry later"), and the contract promises that shape.

Validation messages name the field and the problem but never echo the input: a bad request may
carry a credential, and messages end up in logs.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sentinel.contract import ApiError

_MAX_PROBLEMS = 5


class ApiException(Exception):
    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers


def error_response(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ApiError(error=error, message=message).model_dump(), status_code=status, headers=headers)


def describe_validation(errors: list[dict]) -> str:
    problems = []
    for err in errors[:_MAX_PROBLEMS]:
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            where = ".".join(loc[1:]) or loc[0]
            where = f"{loc[0]} {where}" if loc[0] != "body" or len(loc) == 1 else where
        else:
            where = ".".join(loc) or "request"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    more = len(errors) - _MAX_PROBLEMS
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


_HTTP_ERRORS = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiException)
    async def _api(request: Request, exc: ApiException) -> JSONResponse:
        return error_response(exc.status, exc.error, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "bad_request", describe_validation(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = _HTTP_ERRORS.get(exc.status_code, "bad_request" if exc.status_code < 500 else "server_error")
        return error_response(exc.status_code, error, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "server_error", "internal error in the reference service")
