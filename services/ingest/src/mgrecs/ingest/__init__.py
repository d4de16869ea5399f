"""Order ingestion: HTTP push, CSV backfill and the published contract of topic `orders`.

Other applications (the `mgrecs` CLI) import only `mgrecs.ingest.public`.
"""
