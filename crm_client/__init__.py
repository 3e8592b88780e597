"""CRM client: the Open311 GeoReport v2 wire, the retry policy and a circuit breaker.

Knows nothing of channels or the store: the caller builds a ``ServiceRequest``, posts it
with ``Open311Client.post_request`` and records the ``PostOutcome`` it gets back.
"""

from crm_client.breaker import BreakerState, CircuitBreaker
from crm_client.open311 import (
    DESCRIPTION_MAX_CHARS,
    STATUS_BATCH_SIZE,
    Accepted,
    CrmError,
    Open311Client,
    Pending,
    PostOutcome,
    Rejected,
    RemoteStatus,
    RetryLater,
    ServiceRequest,
    form_fields,
    parse_retry_after,
)
from crm_client.policy import RetryPolicy

__all__ = [
    "DESCRIPTION_MAX_CHARS",
    "STATUS_BATCH_SIZE",
    "Accepted",
    "BreakerState",
    "CircuitBreaker",
    "CrmError",
    "Open311Client",
    "Pending",
    "PostOutcome",
    "Rejected",
    "RemoteStatus",
    "RetryLater",
    "RetryPolicy",
    "ServiceRequest",
    "form_fields",
    "parse_retry_after",
]
