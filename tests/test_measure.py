import math

import pytest

from beltrami.bench.measure import gather_bandwidth, memory_bandwidth


def test_bandwidths_are_positive_and_finite():
    for value in (memory_bandwidth(2**20, repeat=2), gather_bandwidth(2**20, row_bytes=128, repeat=2)):
        assert value > 0 and math.isfinite(value)


@pytest.mark.parametrize("row_bytes", [0, 6, -4])
def test_gather_bandwidth_rejects_rows_that_are_not_float32(row_bytes):
    with pytest.raises(ValueError, match="row_bytes must be a positive multiple of 4"):
        gather_bandwidth(2**20, row_bytes=row_bytes)
