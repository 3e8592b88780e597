"""CRM client: Open311 GeoReport v2 and hold modes, with retries (knows no channel)."""
