"""Data processing: what a DP sends, checked, scored, normalised, traced and sealed.

Pure cores (no I/O): ``schema`` (a DP's declared record schema and its versioned profile),
``normalisers`` and ``mapping`` (to Pavilion's canonical model), ``formats`` (parsers of
CSV, NDJSON, JSON, XML and Parquet, plus lookup answers), ``validation`` (per record and per
batch), ``compliance`` (undeclared data categories), ``quality`` (0-100 scores), ``pipeline``
(one batch end to end), ``lineage`` (OpenLineage events and the graph) and ``integrity``
(digests, signed manifests, detached JWS). I/O sits at the edge: ``spool`` (a streamed upload
to a temporary file under a size limit), ``store`` (tables behind small interfaces) and
``service`` (transactions).
"""
