"""The Accuracy section of BENCHMARKS.md: written in place, the other sections kept, and kept by `make bench`."""

from bench.accuracy import rewrite


def test_the_section_goes_before_the_scenarios_and_replaces_itself_later() -> None:
    text = "# Benchmarks\n\n| table |\n\n## Scenarios\n\nrows\n\n## Soak\n\nsoak\n"
    once = rewrite(text, "## Accuracy\n\nfirst\n")
    assert once.index("## Accuracy") < once.index("## Scenarios") < once.index("## Soak")
    twice = rewrite(once, "## Accuracy\n\nsecond\n")
    assert "first" not in twice
    assert twice.count("## Accuracy") == 1
    assert twice.replace("second", "first") == once
    assert rewrite("# Benchmarks\n", "## Accuracy\n\nx\n").endswith("## Accuracy\n\nx\n")
