import sys

import numpy as np
import pandas as pd

from llmux_jupyter.types.kinds import instance_of, is_dataframe, is_ndarray, is_series


def test_library_classes_are_recognised_subclasses_too():
    class Mine(pd.DataFrame):
        pass

    assert is_dataframe(pd.DataFrame()) and is_dataframe(Mine())
    assert is_series(pd.Series(dtype=float)) and not is_dataframe(pd.Series(dtype=float))
    assert is_ndarray(np.zeros(2)) and not is_ndarray([0.0, 0.0])

    class DataFrame:  # the same name from another package
        pass

    assert not is_dataframe(DataFrame())


def test_a_library_that_is_not_imported_is_never_imported():
    assert "not_a_library" not in sys.modules
    assert not instance_of(object(), "not_a_library", "Thing")
    assert "not_a_library" not in sys.modules
    assert not instance_of(np.zeros(2), "numpy", "not_a_class")
