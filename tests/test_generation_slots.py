"""How many generations the server runs at once (assembly.generation_slots): the decode loop only pays off where
the local transformers model decodes greedy streams together; elsewhere a CPU runs one at a time."""

from assistant import assembly
from assistant.settings import Settings


def test_slots_follow_the_decode_loop(tmp_path):
    def slots(**generator) -> int:
        return assembly.generation_slots(Settings(home=tmp_path, generator=generator))

    assert slots(mode="transformers") == 8  # batch_streams' default: streams decoded together
    assert slots(mode="transformers", batch_streams=4) == 4
    assert slots(mode="transformers", batch_streams=1) == 1
    assert slots(mode="transformers", prompt_lookup_tokens=0) == 1  # no lookup, no batched passes
    assert slots(mode="transformers", temperature=0.7) == 1  # sampled answers take the locked path
    assert slots(mode="transformers", device="cuda") == 1
    assert slots(mode="openvino") == 1 and slots(mode="fake") == 1
    raised = Settings(home=tmp_path, generator={"mode": "fake"}, server={"max_concurrent_generations": 3})
    assert assembly.generation_slots(raised) == 3
