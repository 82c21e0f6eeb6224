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


def test_anchors_are_prompt_positions_of_every_row_chosen_without_randomness(tiny):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    batch = [encode(tokenizer, example("berlin", "180")), encode(tokenizer, example("zurich", "0", oracle=False))]
    tensors = collate(batch, tokenizer.pad_token_id, anchors=8)
    anchor = tensors["anchor"].tolist()
    shortest_prompt = min(len(e.input_ids) - e.answer_tokens for e in batch)
    assert len(anchor) == 8 and anchor == sorted(set(anchor)) and anchor[0] == 0
    assert anchor[-1] + 1 < shortest_prompt  # each anchor predicts a prompt token, in every row
    assert all(e.labels[t + 1] == IGNORE for e in batch for t in anchor)
    assert not set(anchor) & set(tensors["keep"].tolist())
    assert anchor == collate(batch, tokenizer.pad_token_id, anchors=8)["anchor"].tolist()  # exact resume
    assert tensors["prompt_positions"] == sum(len(e.input_ids) - e.answer_tokens - 1 for e in batch)
    assert collate(batch, tokenizer.pad_token_id)["anchor"].numel() == 0


def test_the_shipped_recipe_learns_to_stop_without_ending_answers_before_they_start(tiny, tmp_path):
    """The demo adapter's collapse, in small: every target ends with EOS, which the loss sees only at answer
    positions, so the cheapest way down is to raise EOS everywhere; then EOS is the first token of an answer
    and the chat answers nothing. With the shipped recipe the adapter must learn as much, leave prompt
    positions alone and never start a held-out answer with EOS (without the anchor: EOS x1.5 at every prompt
    position and the top first token of both held-out answers)."""
    import torch

    def trained(anchor_weight: float | None):
        # lora-cpu as shipped; only what a random 2-layer model needs to move in a few seconds changes
        # (its attention alone barely moves the next-token distribution).
        changes = dict(learning_rate=1e-2, epochs=15, dropout=0.0, warmup_ratio=0.0, batch_size=2,
                       gradient_accumulation=1, early_stopping_patience=0, max_train_examples=0,
                       target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        if anchor_weight is not None:
            changes["anchor_weight"] = anchor_weight
        chosen = load_recipe("lora-cpu").model_copy(update=changes)
        tokenizer, model = load_base(settings_for(tmp_path / str(anchor_weight), tiny), chosen)
        rows = [encode(tokenizer, example(c, r)) for c, r in FACTS]
        train, held_out = rows[2:], rows[:2]
        trainer = LoraTrainer(model, chosen, train, held_out, tmp_path / f"w{anchor_weight}", tokenizer.pad_token_id)
        before = trainer.validation_loss()
        trainer.train()
        after = trainer.validation_loss()
        model.eval()
        eos, boosts, first_is_eos = tokenizer.eos_token_id, [], []
        with torch.no_grad():
            for e in held_out:
                prompt_ids = torch.tensor([e.input_ids[: len(e.input_ids) - e.answer_tokens]])
                tuned = model(input_ids=prompt_ids).logits[0].float().softmax(-1)
                with model.disable_adapter():
                    base = model(input_ids=prompt_ids).logits[0].float().softmax(-1)
                boosts.append(float(tuned[:-1, eos].mean() / base[:-1, eos].mean()))  # inside the prompt
                first_is_eos.append(int(tuned[-1].argmax()) == eos)  # the first answer token
        return before - after, sum(boosts) / len(boosts), first_is_eos

    learned, boost, first_is_eos = trained(None)
    assert learned > 0.8, learned  # measured: 5.51 -> 4.40 on the held-out answers
    assert boost < 1.2, boost  # measured: 0.91 (1.53 without the anchor)
    assert not any(first_is_eos)
    unanchored_learned, unanchored_boost, unanchored_first = trained(0.0)  # the test can fail: the old objective
    assert unanchored_boost > 1.3 and any(unanchored_first) and unanchored_learned <= learned + 0.1


def test_warmup_is_at_least_one_step_when_asked_for(tiny, tmp_path):
    tokenizer, model = load_base(settings_for(tmp_path, tiny), recipe())
    rows = [encode(tokenizer, example(c, r)) for c, r in FACTS]
    trainer = LoraTrainer(model, recipe(warmup_ratio=0.05), rows, [], tmp_path / "w", tokenizer.pad_token_id)
    assert trainer.total_steps == 6 and trainer.scheduler.get_last_lr()[0] == 0.0  # 0.05 x 6 steps rounds up to 1


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
