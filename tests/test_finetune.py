"""LoRA training on a tiny random Gemma: answer-only loss, learning, exact resume, registry output, export."""

import json

import pytest

from assistant import assembly, prompt
from assistant.settings import Settings
from finetune.finetune_job import load_base, run_finetune
from finetune.recipe import LoraRecipe, load_recipe
from finetune.registry import AdapterRegistry
from finetune.trainer import LoraTrainer
from finetune.training_data import IGNORE, collate, encode, encode_all
from tests.test_runtime_contract import tiny_model_dir

FACTS = [("berlin", "180"), ("london", "220"), ("paris", "150"), ("madrid", "120"),
         ("rome", "140"), ("vienna", "160"), ("oslo", "250"), ("dublin", "190")]


def example(city, rate, oracle=True):
    doc = prompt.PromptDoc("travel.md", None, "", f"the hotel rate is capped at {rate} per night in {city}")
    answer = f"{rate} per night [1]" if oracle else prompt.REFUSAL
    return {"id": city, "prompt": prompt.render([doc] if oracle else [], f"hotel rate in {city} ?"),
            "completion": prompt.completion(answer)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    base, _ = tiny_model_dir(root)
    return base


def recipe(**changes):
    values = dict(target_modules=["q_proj", "v_proj"], rank=4, alpha=8, dropout=0.1, learning_rate=5e-3,
                  warmup_ratio=0.0, epochs=3, batch_size=2, gradient_accumulation=2, max_seq_tokens=512,
                  checkpoint_every_steps=2, early_stopping_patience=0, seed=7)
    values.update(changes)
    return LoraRecipe(**values)


def settings_for(tmp_path, base):
    return Settings(home=tmp_path / "home", generator={"model": str(base), "context_window_tokens": 512})


def dataset(tmp_path, n_val=2):
    folder = tmp_path / "ds"
    folder.mkdir()
    rows = [example(c, r) for c, r in FACTS] + [example("zurich", "0", oracle=False)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[n_val:]))
    (folder / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:n_val]))
    return folder


def test_labels_cover_only_the_answer_and_eos(tiny):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    row = example("berlin", "180")
    encoded = encode(tokenizer, row)
    prompt_ids = tokenizer(row["prompt"])["input_ids"]
    answer_ids = tokenizer(row["completion"], add_special_tokens=False)["input_ids"]
    assert encoded.input_ids == prompt_ids + answer_ids + [tokenizer.eos_token_id]
    assert encoded.labels[: len(prompt_ids)] == [IGNORE] * len(prompt_ids)
    assert encoded.labels[len(prompt_ids):] == answer_ids + [tokenizer.eos_token_id]
    long_row = {"prompt": "the " * 600, "completion": " a"}
    kept, skipped = encode_all(tokenizer, [row, long_row], max_tokens=512)
    assert len(kept) == 1 and skipped == 1


def test_answer_only_logits_give_the_same_loss_as_a_full_forward(tiny, tmp_path):
    import torch

    tokenizer, model = load_base(settings_for(tmp_path, tiny), recipe(dropout=0.0))
    model.eval()
    batch = [encode(tokenizer, example("berlin", "180")), encode(tokenizer, example("zurich", "0", oracle=False))]
    trainer = LoraTrainer(model, recipe(dropout=0.0), batch, [], tmp_path / "w", tokenizer.pad_token_id)
    ours = trainer.loss(batch)
    tensors = collate(batch, tokenizer.pad_token_id)
    labels = torch.full_like(tensors["input_ids"], IGNORE)
    for row, e in enumerate(batch):
        labels[row, : len(e.labels)] = torch.tensor(e.labels)
    full = model(input_ids=tensors["input_ids"], attention_mask=tensors["attention_mask"]).logits
    reference = torch.nn.functional.cross_entropy(full[:, :-1].reshape(-1, full.shape[-1]), labels[:, 1:].reshape(-1),
                                                  ignore_index=IGNORE)
    assert torch.allclose(ours, reference, atol=1e-5)
    assert len(tensors["keep"]) < tensors["input_ids"].shape[1] / 2  # most positions skip the lm head


def test_training_lowers_the_loss_on_a_toy_set(tiny, tmp_path):
    # A random 2-layer model needs the MLP adapted too to move its next-token distribution.
    chosen = recipe(epochs=15, dropout=0.0, learning_rate=1e-2,
                    target_modules=["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"])
    tokenizer, model = load_base(settings_for(tmp_path, tiny), chosen)
    rows = [encode(tokenizer, example(c, r)) for c, r in FACTS]
    trainer = LoraTrainer(model, chosen, rows, rows[:2], tmp_path / "w", tokenizer.pad_token_id)
    before = trainer.validation_loss()
    result = trainer.train()
    after = trainer.validation_loss()
    assert after < before * 0.9, (before, after)  # measured: 5.5 -> 4.5
    assert result.val_losses == sorted(result.val_losses, reverse=True)
    assert result.val_losses and result.best_val_loss is not None and result.tokens > 0
    assert (tmp_path / "w" / "best" / "adapter_config.json").is_file()


def trainable(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_resume_reproduces_the_uninterrupted_run(tiny, tmp_path):
    import torch

    def fresh(work):
        tokenizer, model = load_base(settings_for(tmp_path, tiny), recipe())
        rows = [encode(tokenizer, example(c, r)) for c, r in FACTS]
        return LoraTrainer(model, recipe(), rows, rows[:2], work, tokenizer.pad_token_id), model

    straight, model_a = fresh(tmp_path / "a")
    straight.train()
    first, _ = fresh(tmp_path / "b")
    first.train(stop_after_steps=3)  # "killed" mid-epoch 2 (2 steps per epoch), after a checkpoint
    assert (tmp_path / "b" / "checkpoint" / "state.pt").is_file()
    second, model_b = fresh(tmp_path / "b")
    result = second.train(resume=True)
    assert result.steps == straight.result.steps == 6
    a, b = trainable(model_a), trainable(model_b)
    assert all(torch.allclose(a[n], b[n], atol=1e-6) for n in a)
    assert result.val_losses == straight.result.val_losses
    assert not (tmp_path / "b" / "checkpoint").exists()  # a finished run leaves no checkpoint


def test_finetune_job_publishes_a_version_that_serves_and_exports(tiny, tmp_path):
    import torch

    settings = settings_for(tmp_path, tiny)
    data = dataset(tmp_path)
    stopped, _, work = run_finetune(settings, data, recipe(), "assistant", stop_after_steps=1)
    assert stopped is None and (work / "checkpoint").is_dir()
    with pytest.raises(FileNotFoundError, match="no interrupted run"):
        run_finetune(settings, data, recipe(), "other", resume=True)
    version, result, _ = run_finetune(settings, data, recipe(), "assistant", resume=True)
    assert version.ref == "assistant@v1" and result.steps == 6
    meta = json.loads((version.path / "metadata.json").read_text())
    assert meta["base_model"]["sha256"] and meta["dataset"]["sha256"] and meta["hyperparameters"]["rank"] == 4
    assert meta["training"]["val_losses"] and meta["prompt_format"] == prompt.FORMAT_VERSION
    assert (version.path / "adapter_model.safetensors").is_file() and not list(version.path.glob("checkpoint*"))
    AdapterRegistry(settings.adapters_dir).promote("assistant@v1")
    generator = assembly.generator(settings)
    assert assembly.default_adapter(settings, generator) == "assistant"

    from finetune.export import export_merged
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged_dir = export_merged(settings, version, tmp_path / "merged")
    ids = torch.tensor([[2, 5, 6, 7, 8]])
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny), str(version.path)).eval()
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, with_adapter(ids).logits, atol=1e-4)
    with pytest.raises(ValueError, match="not empty"):
        export_merged(settings, version, tmp_path / "merged")


def test_shipped_recipes_load_and_a_user_recipe_extends_one(tmp_path):
    assert load_recipe(None).name == "lora-cpu" and load_recipe("lora-gpu").dtype == "bfloat16"
    user = tmp_path / "mine.yaml"
    user.write_text("base: lora-cpu\nrank: 16\n")
    mine = load_recipe(str(user))
    assert mine.rank == 16 and mine.target_modules == load_recipe("lora-cpu").target_modules
    with pytest.raises(ValueError, match="no recipe"):
        load_recipe("nope")
    user.write_text("rnak: 16\n")
    with pytest.raises(ValueError):
        load_recipe(str(user))
