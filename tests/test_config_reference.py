"""The README's configuration reference is the one the Settings model renders (regenerate with
`python -m assistant.config_reference --write`)."""

from __future__ import annotations

from assistant.config_reference import README, render, replace_block
from assistant.settings import Settings


def test_readme_configuration_reference_matches_the_settings_model():
    text = README.read_text(encoding="utf-8")
    assert replace_block(text, render()) == text, "README is stale: run python -m assistant.config_reference --write"


def test_every_setting_is_documented_and_listed():
    rendered = render()
    for section, model in Settings.model_fields.items():
        annotation = model.annotation
        fields = getattr(annotation, "model_fields", None)
        if fields:
            for name, field in fields.items():
                assert field.description, f"{section}.{name} has no description"
                assert f"`{section}.{name}`" in rendered
        else:
            assert f"`{section}`" in rendered
