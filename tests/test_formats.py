"""Format adapters on fixtures in each real layout, and on ../shared/data when present."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest
from conftest import ROOT, SHARED_DATA

from harness.data.formats import adapt
from harness.data.source import SOURCES
from harness.data.step import StepContext
from harness.errors import HarnessError
from harness.schema import Where, build
from harness.data.source import Source

FIXTURES = ROOT / "tests" / "fixtures"


def rows(name):
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines()]


def run_adapter(format_name, data, kind=None):
    ctx = StepContext(label="source:t", seed=0)
    columns = sorted({k for r in data for k in r})
    return list(adapt(iter(data), columns, format_name, kind, "t", ctx)), ctx


def test_hh_rlhf_transcripts():
    out, ctx = run_adapter("hh_rlhf", rows("hh_rlhf.jsonl"))
    assert ctx.drops == {"prompt_mismatch": 1, "bad_transcript_chosen": 1}
    first, second = out
    assert first["prompt"] == [{"role": "user", "content": "How do I boil an egg?"}]
    assert first["chosen"][0]["content"] == "Put it in boiling water for 9 minutes."
    assert first["rejected"][0]["content"] == "I don't know."
    assert [m["role"] for m in second["prompt"]] == ["user", "assistant", "user"]
    sft, _ = run_adapter("hh_rlhf", rows("hh_rlhf.jsonl")[:1], kind="sft")
    assert sft[0]["messages"][-1]["content"].startswith("Put it in boiling")


def test_ultrafeedback_binarized_keeps_scores():
    out, ctx = run_adapter("ultrafeedback_binarized", rows("ultrafeedback_binarized.jsonl"))
    assert ctx.drops == {"no_assistant_turn_in_chosen": 1}
    assert (out[0]["score_chosen"], out[0]["score_rejected"]) == (8.0, 3.0)
    assert out[0]["metadata"]["prompt_id"] == "p1" and out[0]["chosen"][0]["content"] == "7"


def test_olmo2_preference():
    out, ctx = run_adapter("olmo2_preference", rows("olmo2_preference.jsonl"))
    assert ctx.drops == {"prompt_mismatch": 1}
    assert out[0]["score_chosen"] == 5.0 and out[0]["metadata"]["chosen_model"] == "m1"


def test_messages_formats():
    out, ctx = run_adapter("tulu3_sft", rows("tulu3_sft.jsonl"))
    assert ctx.drops == {"no_assistant_turn": 1, "bad_messages": 1}
    assert out[0]["messages"][0]["role"] == "system" and out[0]["metadata"] == {"id": "t1", "source": "flan"}
    out, _ = run_adapter("smoltalk", rows("smoltalk.jsonl"), kind="prompt")
    assert [m["content"] for m in out[0]["prompt"]] == ["Hello", "Hi there", "Bye"]


def test_countdown_tasks():
    out, ctx = run_adapter("countdown_tasks", rows("countdown_tasks.jsonl") + [{"target": "x", "nums": [1, 2]}])
    assert ctx.drops == {"bad_target": 1}
    assert out[0]["metadata"] == {"numbers": [44, 19, 35], "target": 98}


def test_gsm8k_answers():
    out, ctx = run_adapter("gsm8k", rows("gsm8k.jsonl"))
    assert ctx.drops == {"no_final_answer": 1}
    assert [o["metadata"]["answer"] for o in out] == ["5", "1200"]
    sft, _ = run_adapter("gsm8k", rows("gsm8k.jsonl")[:1], kind="sft")
    assert sft[0]["messages"][-1]["content"] == "He has 3+2=5 apples.\nThe answer is 5."


def test_alpaca():
    out, ctx = run_adapter("alpaca", rows("alpaca.jsonl"))
    assert ctx.drops == {"missing_instruction": 1}
    assert out[0]["messages"][0]["content"] == "Translate to French\n\ncat"
    assert out[1]["messages"] == [{"role": "user", "content": "Say hello"}, {"role": "assistant", "content": "Hello"}]


def test_trl_layout_strings_and_messages():
    out, _ = run_adapter("trl", rows("trl_preference.jsonl"))
    assert [o["kind"] for o in out] == ["preference", "preference"]
    assert out[0]["chosen"] == [{"role": "assistant", "content": "good"}]


def test_missing_column_is_one_clear_error():
    with pytest.raises(HarnessError, match="column 'question' is missing for format 'gsm8k'"):
        run_adapter("gsm8k", [{"prompt": "x"}])


def make_source(tree):
    return build(Source, tree, Where(file="r.yaml"))


def test_local_source_reads_gzip_jsonl_through_datasets(tmp_path):
    gz = tmp_path / "hh.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write((FIXTURES / "hh_rlhf.jsonl").read_text(encoding="utf-8"))
    source = make_source({"source": "local", "path": str(gz), "format": "hh_rlhf"})
    ctx = StepContext(label="source:local", seed=0)
    out = list(source.load(ctx))
    assert len(out) == 2 and sum(ctx.drops.values()) == 2
    assert source.identity()["sha"] == make_source({"source": "local", "path": str(gz), "format": "hh_rlhf"}).identity()["sha"]


def test_local_source_parquet_and_csv(tmp_path):
    import pandas as pd

    frame = pd.DataFrame(rows("alpaca.jsonl")[:2])
    frame.to_parquet(tmp_path / "a.parquet")
    frame.to_csv(tmp_path / "a.csv", index=False)
    for name in ("a.parquet", "a.csv"):
        source = make_source({"source": "local", "path": str(tmp_path / name), "format": "alpaca", "limit": 1})
        out = list(source.load(StepContext(label="x", seed=0)))
        assert len(out) == 1 and out[0]["messages"][1]["content"] == "chat"


def test_hub_source_offline_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = make_source({"source": "hub", "path": "nobody/no-such-dataset-xyz", "format": "trl"})
    with pytest.raises(HarnessError) as err:
        list(source.load(StepContext(label="x", seed=0)))
    assert "cannot load hub dataset 'nobody/no-such-dataset-xyz'" in str(err.value)
    assert "\n" not in str(err.value)


def test_every_format_is_registered():
    from harness.data.formats import FORMATS

    assert {"hh_rlhf", "ultrafeedback_binarized", "olmo2_preference", "tulu3_sft", "smoltalk", "messages",
            "countdown_tasks", "gsm8k", "alpaca", "trl"} <= set(FORMATS.names())
    assert {"hub", "local", "countdown"} <= set(SOURCES.names())


# ----------------------------------------------------------- real samples

def needs_shared(name: str):
    """Skip unless this very file is in ../shared/data (the folder may hold only some samples)."""
    return pytest.mark.skipif(not (SHARED_DATA / name).is_file(), reason=f"../shared/data/{name} not present")


@needs_shared("hh_rlhf_harmless_base_test.jsonl.gz")
def test_real_hh_rlhf_sample():
    path = SHARED_DATA / "hh_rlhf_harmless_base_test.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = [json.loads(line) for line in f]
    out, ctx = run_adapter("hh_rlhf", data)
    assert len(out) + sum(ctx.drops.values()) == len(data)
    assert len(out) / len(data) > 0.95
    assert all(o["prompt"][-1]["role"] == "user" and o["chosen"][0]["content"] for o in out)


@needs_shared("gsm8k_test.jsonl")
def test_real_gsm8k_sample_through_local_source(tmp_path):
    shutil.copy(SHARED_DATA / "gsm8k_test.jsonl", tmp_path / "gsm8k.jsonl")
    source = make_source({"source": "local", "path": str(tmp_path / "gsm8k.jsonl"), "format": "gsm8k"})
    ctx = StepContext(label="x", seed=0)
    out = list(source.load(ctx))
    assert len(out) == 1319 and not ctx.drops
    assert out[0]["metadata"]["answer"] == "18"
    assert all(o["metadata"]["answer"].lstrip("-").replace(".", "").isdigit() for o in out)
