# The compiled part of the package (sdk-python/src). Applications use the
# classes of `chronos`, which wrap these.
from typing import Callable, Optional, final

__all__ = ["NativeClient", "NativeWorker", "Pending", "Settle", "verify", "__version__"]

__version__: str

@final
class NativeClient:
    def __new__(cls, url: str, api_key: str, timeout_seconds: Optional[float] = None) -> "NativeClient": ...
    def call(self, op: str, args: str) -> str: ...
    def call_async(
        self,
        op: str,
        args: str,
        done: Callable[[Optional[str], Optional[BaseException]], object],
    ) -> Pending: ...

@final
class Pending:
    def cancel(self) -> None: ...

@final
class NativeWorker:
    def __new__(
        cls,
        url: str,
        api_key: str,
        concurrency: int = 8,
        worker_id: Optional[str] = None,
        shutdown_grace_seconds: float = 30.0,
    ) -> "NativeWorker": ...
    def handle(self, name: str) -> None: ...
    def start(
        self,
        dispatch: Callable[[str, str, Settle], object],
        on_cancel: Callable[[str], object],
        on_connected: Callable[[], object],
        on_exit: Callable[[Optional[BaseException]], object],
    ) -> None: ...
    def stop(self) -> None: ...
    def extend(self, job_id: str, seconds: int) -> None: ...
    def extend_async(
        self,
        job_id: str,
        seconds: int,
        done: Callable[[None, Optional[BaseException]], object],
    ) -> None: ...

@final
class Settle:
    def __call__(self, outcome: str) -> None: ...

def verify(
    secret: str,
    signature: str,
    timestamp: str,
    body: bytes,
    tolerance_seconds: int,
    now: int,
) -> bool: ...
