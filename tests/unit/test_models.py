"""The shared kernel's pain and bottleneck values: the sentences people read stay the ones they read before."""

import pytest

from vsmmon.models import Bottleneck, Pain, PainCondition


@pytest.mark.parametrize(
    ("pain", "message"),
    [
        (Pain(PainCondition.NO_CONSUMER, "queue orders", 50.0), "queue orders has 50 messages and no live consumer"),
        (Pain(PainCondition.NO_CONSUMER, "queue orders"), "queue orders has messages and no live consumer"),
        (Pain(PainCondition.UNREACHABLE, "broker", detail="r: refused"), "broker unreachable: r: refused"),
        (Pain(PainCondition.UNREACHABLE, "broker"), "broker unreachable"),
        (Pain(PainCondition.ERROR_RATE, "fleet", 0.6), "fleet error rate 60% over 50 %"),
        (Pain(PainCondition.FAST_DROP, "viability", 0.5, "from 0.90"),
         "viability fell from 0.90 to 0.50 since the last check"),
        (Pain(PainCondition.FAST_DROP, "viability"), "viability fell since the last check"),
        (Pain(PainCondition.CONTROL_FAILED, "w1@h", 60.0, 'pool_grow {"n": 1}'),
         'S3 action on w1@h did not restore health within 60 s (pool_grow {"n": 1})'),
        (Pain(PainCondition.CONTROL_FAILED, "w1@h"), "S3 action on w1@h did not restore health"),
    ],
)  # fmt: skip
def test_pain_renders_the_sentences_of_before(pain: Pain, message: str) -> None:
    assert pain.message == message


def test_a_pain_condition_given_as_text_becomes_the_enum_and_an_unknown_one_is_refused() -> None:
    assert Pain("no_consumer", "queue q", 1.0).condition is PainCondition.NO_CONSUMER  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="other"):
        Pain("other", "x")  # type: ignore[arg-type]


def test_bottleneck_renders_the_sentences_of_before() -> None:
    assert Bottleneck("w1@h", "memory", 0.5).message == "w1@h: memory 0.50"
    assert Bottleneck("w1@h", "queue", 0.0).message == "w1@h: queue 0.00"
    assert Bottleneck("queue q1", "backlog", 5.0).message == "queue q1: backlog 5 not draining"
