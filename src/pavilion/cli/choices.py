"""The fixed choices of CLI options, as light enums of the CLI's own.

Typer needs an option's choices when it builds the command, i.e. for ``pavilion --help``;
importing them from their domains would load polars (ingest formats) or jsonschema-rs
(credential templates) on every call. These copies hold the same values, and a unit test holds
them equal to the domains' enums; a command converts to the domain enum when it runs.
"""

from __future__ import annotations

from enum import StrEnum


class DataFormat(StrEnum):
    """``pavilion.ingest.formats.Format``: a roster upload's format."""

    CSV = "csv"
    NDJSON = "ndjson"
    JSON = "json"
    XML = "xml"
    PARQUET = "parquet"


class CredentialFormat(StrEnum):
    """``pavilion.credentials.templates.CredentialFormat``: how a credential is secured."""

    JWT_VC = "jwt_vc"
    VC2_JOSE = "vc2_jose"
    SD_JWT_VC = "sd_jwt_vc"


class Cryptosuite(StrEnum):
    """``pavilion.credentials.embedded.ALGORITHMS``: the Data Integrity cryptosuites issued."""

    EDDSA_RDFC_2022 = "eddsa-rdfc-2022"
    ECDSA_RDFC_2019 = "ecdsa-rdfc-2019"
