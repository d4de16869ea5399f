"""The numpy array types the engine passes around, named once by their element type.

Recipes score in float32 (half the memory of a customers x products block); popularity,
prices, similarities and metrics are float64. The two are kept apart by name so a signature
says which one it takes.
"""

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
UIntArray = npt.NDArray[np.uint64]
Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]
