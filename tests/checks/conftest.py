"""What the checks tests share: the same random numbers in every test, and a test of a chapter's table of error hints."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def expect_hint_table():
    """``expect_hint_table(call, table)``: every entry of a chapter's ``{text in the error: hint}``
    table is a non-empty text and hint, and an error whose message holds an entry's text makes
    ``call`` fail with that entry's hint (so no earlier, shorter entry shadows it)."""

    def check(call, table):
        assert table, "an empty table of hints"
        for key, hint in table.items():
            assert isinstance(key, str) and key.strip() and isinstance(hint, str) and len(hint) > 20, key

            def fails():
                raise RuntimeError(f"something went wrong: {key} (in a student's code)")

            with pytest.raises(AssertionError) as failure:
                call(fails, what="the answer")
            message = str(failure.value)
            assert message.startswith("the answer raised RuntimeError"), message
            assert f"Hint: {hint}" in message, (key, message)

        with pytest.raises(AssertionError) as failure:
            call(lambda: 1 / 0, what="the answer")
        assert "ZeroDivisionError" in str(failure.value)
        assert call(lambda a, b=0: a + b, 2, b=3, what="the answer") == 5

    return check
