"""Responses of the DP registry routes (a provider's own shape is the registry's
``ProviderOut``)."""

from __future__ import annotations

from pavilion.api.schemas.base import Page
from pavilion.providers.schemas import ProviderOut


class ProviderPage(Page[ProviderOut]):
    """One page of registered providers."""
