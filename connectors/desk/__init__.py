"""Walk-in desks (City Hall, Inspektorat, mayors', camat and lurah offices) and the
clipping form for mass media: forms, so no wire format of their own here."""

from __future__ import annotations

from connectors.spec import Channel, Connector

DESK = Connector(
    name="desk",
    channels=(
        Channel("balai_kota", "Balai Kota (pendopo)"),
        Channel("inspektorat", "Inspektorat"),
        Channel("walikota", "Kantor Walikota"),
        Channel("kecamatan", "Kantor Camat"),
        Channel("kelurahan", "Kantor Lurah"),
    ),
    answers="receipt",
)
CLIPPING = Connector(name="media_clipping", channels=(Channel("media", "Media massa"),))
