"""Lineage of the data pipeline: OpenLineage run events per roster upload and per lookup,
stored with the work they describe, and the graph drawn from them.

Events are built with openlineage-python and emitted through an ``OpenLineageClient`` whose
transport keeps them in process (the caller then stores them in its own transaction) and, when
``PAVILION_LINEAGE_FILE`` is set, also appends them to a file with the library's file
transport. No lineage server is needed. openlineage is imported when the first event is built,
never at start-up.

Datasets: ``dp.<provider>.roster`` and ``dp.<provider>.lookup`` (what a data provider sends,
namespace ``dp://<provider>``), ``pavilion.rosters.<provider>`` (canonical roster),
``pavilion.verifications`` and ``pavilion.credentials`` (namespace ``pavilion://<tenant>``).
Events carry names, types, counts, digests and outcomes: never a value from a record.

Modules: ``model`` (names and what a run event is built from), ``events`` (the openlineage
event builders), ``emitter`` (one emitter per runtime), ``graph`` (the graph and its
rendering), ``store`` (events and links in the database).
"""
