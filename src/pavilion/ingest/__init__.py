"""Data processing: what a data provider (DP) sends, checked, scored, normalised, traced and
sealed.

Pure cores (no I/O): ``schema`` (a DP's declared record schema and its versioned profile),
``normalisers`` and ``mapping`` (to Pavilion's canonical model), ``formats`` (one reader per
upload format, plus lookup answers), ``validation`` (per record and per batch), ``compliance``
(undeclared data categories), ``quality`` (0-100 scores), ``pipeline`` (one batch end to end),
``lineage`` (OpenLineage events and the graph) and ``integrity`` (digests, signed manifests,
detached JWS). I/O sits at the edge: ``spool`` (a streamed upload to a temporary file under a
size limit), ``profile_store`` (profiles and upload keys), ``batch_store`` (batches, quarantine,
quality trend), ``roster_store`` (canonical records) and ``lineage.store`` (events and links).
The use cases that hold the transactions are ``pavilion.workflows.roster_upload``.
"""
