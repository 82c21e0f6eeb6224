"""Generation on any OpenAI-compatible server (vLLM, llama.cpp server, TGI): the scale-out path.

We call `/v1/completions` with the raw prompt, not `/v1/chat/completions`: our prompt format is the
template (the base model has none), so the server must not wrap it in another. With vLLM's
multi-LoRA serving an adapter is just another model name, so `adapter` maps to `model`.

Adapter names are checked against the server's `/v1/models` before a request goes out (the list is fetched
again when a name is missing from it, so a restarted engine's new entries are found): llama-cpp-python's server
answers an unknown model name with its default model instead of a 404, which would pass the base model's answer
off as the adapter's. A registry NAME is pointed at the ref its promoted version is served under (`NAME@vN`, see
finetune/serve_config.py) by `load_adapter`, which is how a promotion reaches the engine without a restart.

Cancellation: the event is checked as each streamed event arrives (servers send one per token);
leaving the `with` closes the connection, which the server takes as a disconnect and stops. While
the server is still reading a long prompt nothing arrives, so a cancel then lands at the first token.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Iterator

import httpx

from assistant.runtime.base import GenerationRequest, GenerationStats, GeneratorError, UnknownAdapterError
from assistant.runtime.stops import StopScanner
from assistant.settings import GeneratorSettings

_MAX_SERVER_STOPS = 4  # the OpenAI API accepts at most four stop strings; the rest we apply ourselves


class OpenAIGenerator:
    def __init__(self, settings: GeneratorSettings, client: httpx.Client | None = None):
        self.settings = settings
        self.name = settings.openai_model
        self.context_window = settings.openai_context_window_tokens or settings.context_window_tokens
        key = os.environ.get(settings.openai_api_key_env, "")
        self.client = client or httpx.Client(
            base_url=settings.openai_base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=httpx.Timeout(settings.request_timeout_s, connect=10.0),
        )
        self._tokenize_route: str | None = None  # discovered on first use; "" = the server has none
        self._special_overhead = 0  # tokens the server's tokenizer adds to any text (BOS)
        self._served: set[str] | None = None  # the server's model ids as last listed; None = not listed yet
        self._names: dict[str, str] = {}  # registry NAME -> the served ref it answers with (see load_adapter)

    # --- protocol -----------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """The server's own count where it has a tokenize route; else about 4 characters a token.

        Routes differ: llama.cpp's server and vLLM answer POST /tokenize, llama-cpp-python's
        POST /extras/tokenize/count. The first that works is remembered, with what it counts for
        an empty text (a BOS some servers add), which is subtracted: the protocol counts no special
        tokens. A server that answered but has no such route is not asked again; one that could not
        be reached is (it may be starting up).
        """
        if self._tokenize_route is None:
            self._tokenize_route = self._discover_tokenize_route()
        if self._tokenize_route:
            try:
                return max(0, self._server_count(self._tokenize_route, text) - self._special_overhead)
            except (httpx.HTTPError, ValueError, KeyError):
                pass
        return max(1, len(text) // 4) if text else 0

    def _discover_tokenize_route(self) -> str | None:
        root = str(self.client.base_url).rstrip("/").removesuffix("/v1")
        reached = False
        for url in (f"{root}/tokenize", f"{root}/extras/tokenize/count"):
            try:
                self._special_overhead = self._server_count(url, "")
                return url
            except httpx.TransportError:
                continue  # not reachable (yet)
            except (httpx.HTTPError, ValueError, KeyError):
                reached = True  # it answered, but not with a token count
        return "" if reached else None  # "" = this server has none; None = ask again next time

    def _server_count(self, url: str, text: str) -> int:
        # One body for all: llama.cpp reads `content`, vLLM `prompt` (+ model), llama-cpp-python `input`;
        # each ignores the others' fields.
        body = {"content": text, "prompt": text, "input": text, "model": self.settings.openai_model,
                "add_special_tokens": False}
        response = self.client.post(url, json=body)
        response.raise_for_status()
        data = response.json()
        return int(data["count"]) if "count" in data else len(data["tokens"])

    def adapters(self) -> list[str]:
        served = self._list_models()
        if served is None:
            return []
        names = [n for n, ref in self._names.items() if ref in served]
        return sorted({*(m for m in served if m != self.settings.openai_model), *names})

    def _list_models(self) -> set[str] | None:
        """The server's model ids, listed now (and remembered); None when it cannot be asked."""
        try:
            models = self._get("/models").get("data", [])
        except GeneratorError:
            return None
        self._served = {m["id"] for m in models if m.get("id")}
        return self._served

    def load_adapter(self, name: str, path: str) -> None:
        """Make `name` answer with the registry version at `path`: the server must already serve that version
        under its ref (NAME@vN, from metadata.json), or `name` itself. Nothing is uploaded: the engine loads its
        adapters from its own config."""
        served = self._list_models()
        if served is None:
            raise GeneratorError(f"cannot list the models of the generation server at {self.client.base_url}")
        if name in served:
            return
        meta = Path(path) / "metadata.json"
        ref = ""
        if meta.is_file():
            data = json.loads(meta.read_text())
            ref = f"{data.get('name', '')}@{data.get('version', '')}"
        if ref not in served:
            raise GeneratorError(
                f"the generation server does not serve {ref or path!r}; export it (`ragtune adapters serve-config`, "
                f"or vLLM --lora-modules {ref or name}=PATH) and restart the engine")
        self._names[name] = ref

    def _model_for(self, adapter: str | None) -> str:
        """The model name to send: the base, a served name, or the ref a registry name points at."""
        if not adapter:
            return self.settings.openai_model
        model = self._names.get(adapter, adapter)
        if self._served is not None and model in self._served:
            return model
        served = self._list_models()  # not listed yet, or the engine was restarted with new entries
        if served is not None and model not in served:
            raise UnknownAdapterError(f"the server does not serve model/adapter {adapter!r} "
                                      f"(it serves: {', '.join(sorted(served)) or 'none'})")
        return model  # the list could not be read: let the server decide

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats | None = None
    ) -> Iterator[str]:
        stats = stats if stats is not None else GenerationStats()
        body: dict[str, Any] = {
            "model": self._model_for(request.adapter),
            "prompt": request.prompt,
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},  # token counts in the last event, where supported
        }
        if request.stop:
            body["stop"] = request.stop[:_MAX_SERVER_STOPS]
        if request.seed is not None:
            body["seed"] = request.seed
        scanner = StopScanner(request.stop, request.stop_repeats)
        stats.finish_reason = "stop"
        try:
            with self.client.stream("POST", "/completions", json=body) as response:
                if response.status_code == 404 and request.adapter:
                    raise UnknownAdapterError(f"the server does not serve model/adapter {request.adapter!r}")
                if response.status_code >= 400:
                    response.read()
                    raise GeneratorError(f"generation server answered {response.status_code}: {response.text[:300]}")
                for line in response.iter_lines():
                    if cancel.is_set():
                        stats.finish_reason = "cancelled"
                        return  # leaving the `with` closes the connection: the server stops generating
                    event = _parse(line)
                    if event is None:
                        continue
                    if event == "[DONE]":
                        break
                    choice = (event.get("choices") or [{}])[0]
                    piece = scanner.feed(choice.get("text") or "")
                    stats.completion_tokens += 1 if choice.get("text") else 0
                    if piece:
                        yield piece
                    if scanner.stopped:
                        stats.finish_reason = "stop"
                        break  # one of our stops beyond the server's four: closing the stream ends it
                    if choice.get("finish_reason"):
                        stats.finish_reason = "length" if choice["finish_reason"] == "length" else "stop"
                    usage = event.get("usage") or {}
                    stats.prompt_tokens = usage.get("prompt_tokens", stats.prompt_tokens)
                    stats.completion_tokens = usage.get("completion_tokens", stats.completion_tokens)
        except httpx.TimeoutException as exc:
            raise GeneratorError(f"generation server timed out after {self.settings.request_timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise GeneratorError(f"cannot reach the generation server at {self.client.base_url}: {exc}") from exc
        tail = scanner.flush()
        if tail:
            yield tail
        if not stats.prompt_tokens:  # the server sent no usage: ask its tokenizer (or estimate)
            stats.prompt_tokens = self.count_tokens(request.prompt) + self._special_overhead

    def generate_batch(self, requests: list[GenerationRequest]) -> list[tuple[str, GenerationStats]]:
        """Concurrent requests: vLLM/TGI batch what arrives together, so an evaluation keeps them busy."""
        from concurrent.futures import ThreadPoolExecutor

        def one(request: GenerationRequest) -> tuple[str, GenerationStats]:
            stats = GenerationStats()
            return "".join(self.stream(request, threading.Event(), stats)), stats

        with ThreadPoolExecutor(max_workers=max(1, len(requests))) as pool:
            return list(pool.map(one, requests))

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str) -> dict[str, Any]:
        try:
            response = self.client.get(path)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise GeneratorError(f"generation server {self.client.base_url}{path}: {exc}") from exc


def _parse(line: str) -> dict[str, Any] | str | None:
    """One server-sent-events line → its JSON payload, "[DONE]", or None for comments/blank lines."""
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if payload == "[DONE]":
        return payload
    try:
        return json.loads(payload)
    except json.JSONDecodeError:
        return None
