from modelyard.providers.llama_threads import generation_threads


def test_every_core_but_one_by_default() -> None:
    assert generation_threads(None, cores=2) == 1
    assert generation_threads(None, cores=24) == 23


def test_never_fewer_than_one() -> None:
    assert generation_threads(None, cores=1) == 1


def test_the_configured_count_wins() -> None:
    assert generation_threads(3, cores=2) == 3
    assert generation_threads(1, cores=64) == 1
