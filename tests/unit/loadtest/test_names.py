import pytest

from hello_loadtest.names import MAX_NAME_CHARS, name_generator


def test_fixed_names_repeat_the_prefix():
    gen = name_generator("fixed", prefix="world")
    assert {gen(0), gen(99)} == {"world"}


def test_sequence_names_carry_the_call_index():
    gen = name_generator("sequence", prefix="user")
    assert (gen(0), gen(1234)) == ("user-000000", "user-001234")


def test_random_names_are_the_same_in_every_process_for_the_same_index():
    a, b = name_generator("random", seed=3), name_generator("random", seed=3)
    assert a(17) == b(17)
    assert a(17) != a(18)
    assert len(a(5)) == 12
    assert a(5).isalnum()


def test_names_never_exceed_what_the_api_accepts():
    gen = name_generator("sequence", prefix="x" * 300)
    assert len(gen(1)) == MAX_NAME_CHARS


@pytest.mark.parametrize("prefix", ["", "   "])
def test_blank_prefixes_are_refused(prefix):
    with pytest.raises(ValueError, match="blank"):
        name_generator("fixed", prefix=prefix)
