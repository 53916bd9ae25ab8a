"""Caller vectors become float32 unit vectors: the checks and the two paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mnemolog.domain.errors import ValidationError
from mnemolog.domain.vectors import check_vector, unit_vector

DIMS = 8

float32_vectors = hnp.arrays(
    np.float32,
    DIMS,
    elements=st.floats(width=32, allow_nan=False, allow_infinity=False),
)


@given(float32_vectors)
def test_float32_arrays_normalise_as_any_other_sequence(vector: np.ndarray) -> None:
    """The short path for float32 arrays agrees with the general one (a list
    of the same numbers) to within float32 rounding, or refuses alike."""
    general = unit_vector(np.asarray(vector.tolist(), dtype=np.float64))
    if general is None:
        with pytest.raises(ValidationError, match="all zeros"):
            check_vector(vector, DIMS)
        return
    fast = check_vector(vector, DIMS)
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, general, rtol=0, atol=2e-7)
    assert float(np.linalg.norm(fast.astype(np.float64))) == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float32_arrays_with_non_finite_numbers_are_refused(bad: float) -> None:
    vector = np.ones(DIMS, dtype=np.float32)
    vector[3] = bad
    with pytest.raises(ValidationError, match="finite"):
        check_vector(vector, DIMS)


def test_float32_arrays_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValidationError, match="dimensions"):
        check_vector(np.ones(DIMS + 1, dtype=np.float32), DIMS)
    with pytest.raises(ValidationError, match="one-dimensional"):
        check_vector(np.ones((2, DIMS), dtype=np.float32), DIMS)
