"""How many examples a property runs: the Hypothesis profile decides, GATE_FUZZ_EXAMPLES overrides.

tests/conftest.py loads the profile HYPOTHESIS_PROFILE names: `dev` (the default) runs a
tenth of each property's CI budget, `ci` all of it. Both are derandomised, so every run of a
profile meets the same examples. GATE_FUZZ_EXAMPLES=N runs N examples in every fuzz
property whatever the profile (a long hunt: `GATE_FUZZ_EXAMPLES=100000 pytest tests/test_x.py`).
"""

import os

from hypothesis import settings

DEV_EXAMPLES = 50
"""max_examples of the `dev` profile: a plain @given property runs this many."""
CI_EXAMPLES = 500
"""max_examples of the `ci` profile; a property's budget is scaled by the loaded profile's
share of it."""


def fuzz(ci_examples: int) -> settings:
    """Settings for a property that runs `ci_examples` examples in CI."""
    override = os.environ.get("GATE_FUZZ_EXAMPLES")
    if override:
        return settings(max_examples=int(override))
    share = settings().max_examples / CI_EXAMPLES
    return settings(max_examples=max(10, round(ci_examples * share)))
