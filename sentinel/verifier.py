"""The verifier seam: credential + time budget → health status, and never an exception.

The real backend is the HTTP client of the health-status service (`sentinel.client`); the
in-process table here is a test tool, used where a test wants exact control of the answer.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

from sentinel.credentials import Credential
from sentinel.health import HealthStatus, Status


class Verifier(ABC):
    @abstractmethod
    def verify(self, credential: Credential, timeout_s: float) -> HealthStatus:
        """Ask about one credential. Must return within about `timeout_s` and must not raise:
        faults become statuses, `timeout` only when the service could not be reached in time (the
        offline policy decides), `verify_failed` for anything else (a staff check), each with a
        `status_detail` code saying why."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class TableVerifier(Verifier):
    """Answers from a fixed table after a set latency; `hold` makes it hang until released, which
    is how tests show that a verifier past its deadline does not stall the loop."""

    def __init__(
        self,
        answers: Mapping[tuple[str, str], HealthStatus],
        latency_s: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.answers = dict(answers)
        self.latency_s = latency_s
        self.calls: list[Credential] = []
        self.hold = threading.Event()
        self.hold.set()
        self._sleep = sleep

    def verify(self, credential: Credential, timeout_s: float) -> HealthStatus:
        self.calls.append(credential)
        if self.latency_s:
            self._sleep(self.latency_s)
        self.hold.wait()
        return self.answers.get(credential.key, HealthStatus(status=Status.NOT_FOUND))
