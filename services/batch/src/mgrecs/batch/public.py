"""What the batch service offers other applications (the operator's CLI): the one module they
import. Everything else in `mgrecs.batch` is internal and may change without notice.
"""

from mgrecs.batch import activation
from mgrecs.batch.aws.provision import Provisioning, check_name, provision
from mgrecs.batch.drift import check_drift

__all__ = ["Provisioning", "activation", "check_drift", "check_name", "provision"]
