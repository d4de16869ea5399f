"""Order ingestion: HTTP push, CSV backfill and the published contract of topic `orders`."""
