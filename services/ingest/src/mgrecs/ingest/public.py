"""What the ingest service offers other applications (the operator's CLI): the one module they
import. Everything else in `mgrecs.ingest` is internal and may change without notice.
"""

from mgrecs.ingest.backfill import backfill_file
from mgrecs.ingest.company_client import ApiUnavailableError
from mgrecs.ingest.connector import run_sync
from mgrecs.ingest.connector_service import require_connector_secrets, run_connector
from mgrecs.ingest.contract import write_asyncapi
from mgrecs.ingest.mapping import MappingError
from mgrecs.ingest.order_files import FileFormat, detect_format
from mgrecs.ingest.product_files import backfill_products as backfill_catalogue
from mgrecs.ingest.publisher import BrokerUnavailableError
from mgrecs.ingest.sample_data import generate

FAKE_COMPANY_API = "mgrecs.ingest.fake_company_api"
"""The module to run (`python -m`) to serve the sample data set as the company's order API."""

__all__ = [
    "FAKE_COMPANY_API",
    "ApiUnavailableError",
    "BrokerUnavailableError",
    "FileFormat",
    "MappingError",
    "backfill_catalogue",
    "backfill_file",
    "detect_format",
    "generate",
    "require_connector_secrets",
    "run_connector",
    "run_sync",
    "write_asyncapi",
]
