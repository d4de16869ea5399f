"""What the batch service offers other applications (the operator's CLI): the one module they
import. Everything else in `mgrecs.batch` is internal and may change without notice.
"""

from mgrecs.batch import activation
from mgrecs.batch.drift import check_drift

__all__ = ["activation", "check_drift"]
